"""Numbers a run stores as JSON: NaN and infinity become null, with the reason beside them.

PostgreSQL's jsonb has no NaN (SQLite accepts it), so a single NaN in a run's history or evaluation would fail
the save and with it the run. No torch here: the web process uses it too.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from typing import Any

__all__ = ["UNDEFINED_SUFFIX", "json_safe", "undefined_as_null"]

# "val_auc": null sits beside "val_auc_undefined": "<why>".
UNDEFINED_SUFFIX = "_undefined"


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)  # numpy scalars register as Real


def json_safe(value: Any) -> Any:
    """`value` with every non-finite float (also numpy scalars and arrays, at any depth) replaced by None."""
    if isinstance(value, Mapping):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    if hasattr(value, "tolist"):  # numpy arrays and scalars, 0-d tensors
        return json_safe(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def undefined_as_null(record: Mapping[str, Any], reasons: Mapping[str, str]) -> dict[str, Any]:
    """`record` with each non-finite number set to None and `<key>_undefined` saying why.

    The reason is `reasons[key]`, else `reasons["*"]`, else "not a finite number".
    """
    out: dict[str, Any] = {}
    for key, value in record.items():
        if _is_number(value) and not math.isfinite(float(value)):
            out[key] = None
            out[key + UNDEFINED_SUFFIX] = reasons.get(key, reasons.get("*", "not a finite number"))
        else:
            out[key] = value
    return out
