"""The bundle's JSON: standard JSON that R and JavaScript parse, whatever numbers the report holds."""

from __future__ import annotations

import json
import math

import numpy as np

from studyapp.dashboards.figures import DataTable
from studyapp.reports.bundle import canonical_json


def strict_loads(data: bytes):
    """Parse as R's jsonlite and JavaScript's JSON.parse do: NaN and Infinity are not JSON."""
    def refuse(token: str):
        raise ValueError(f"{token} is not JSON")

    return json.loads(data, parse_constant=refuse)


def test_undefined_numbers_are_null_at_any_depth():
    table = DataTable(columns=["model", "auc"], rows=[["squeezenet", float("nan")], ["mobilenet", 0.91]])
    value = {"auc": float("nan"), "runs": [{"ci": [float("-inf"), 0.8]}, (1.0, float("inf"))], "table": table,
             "kept": 0.5}
    parsed = strict_loads(canonical_json(value))
    assert parsed == {"auc": None, "runs": [{"ci": [None, 0.8]}, [1.0, None]],
                      "table": {"columns": ["model", "auc"], "rows": [["squeezenet", None], ["mobilenet", 0.91]]},
                      "kept": 0.5}


def test_finite_numbers_and_layout_are_unchanged():
    value = {"b": [1, 2.5, math.pi], "a": "Ünïcode", "n": None, "flag": True, "big": float(np.float64(1e300))}
    data = canonical_json(value)
    assert data == (json.dumps(value, sort_keys=True, indent=1, ensure_ascii=False) + "\n").encode()
    assert strict_loads(data) == value
