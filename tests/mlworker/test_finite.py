"""JSON a run stores: no NaN or infinity anywhere, undefined metrics as null with the reason."""

import json
import math

import numpy as np

from mlworker.finite import json_safe, undefined_as_null


def test_json_safe_replaces_non_finite_numbers_at_any_depth():
    value = {"auc": math.nan, "ci": {"low": -math.inf, "high": 0.9}, "roc": [0.1, np.float32("nan"), np.inf],
             "probs": np.array([0.5, np.nan]), "n": np.int64(3), "ok": True, "name": "x"}
    safe = json_safe(value)
    assert safe == {"auc": None, "ci": {"low": None, "high": 0.9}, "roc": [0.1, None, None], "probs": [0.5, None],
                    "n": 3, "ok": True, "name": "x"}
    json.dumps(safe, allow_nan=False)


def test_undefined_metrics_become_null_with_their_reason():
    record = {"epoch": 3, "val_auc": math.nan, "val_loss": np.float64("inf"), "train_loss": 0.5, "flag": True}
    out = undefined_as_null(record, {"val_auc": "one class in validation", "*": "diverged"})
    assert out == {"epoch": 3, "val_auc": None, "val_auc_undefined": "one class in validation", "val_loss": None,
                   "val_loss_undefined": "diverged", "train_loss": 0.5, "flag": True}


def test_json_safe_converts_every_value_first_when_asked():
    class Table:
        def __init__(self, rows):
            self.rows = rows

    value = {"table": Table([[1.0, math.nan]]), "nested": [Table([[np.float64("inf")]])], "x": 2.0}
    as_dict = lambda v: {"rows": v.rows} if isinstance(v, Table) else v  # noqa: E731
    assert json_safe(value, convert=as_dict) == {"table": {"rows": [[1.0, None]]}, "nested": [{"rows": [[None]]}],
                                                 "x": 2.0}
