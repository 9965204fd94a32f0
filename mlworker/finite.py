"""Numbers stored or served as JSON: NaN and infinity become null, with the reason beside them where known.

PostgreSQL's jsonb has no NaN (SQLite accepts it), so a single NaN in a run's history or evaluation would fail
the save and with it the run; R's and JavaScript's JSON parsers refuse the NaN Python writes. The one walk for
run histories, evaluations, comparisons and the report bundle. No torch or Django here: the web process uses it.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["UNDEFINED_SUFFIX", "json_safe", "undefined_as_null"]

# "val_auc": null sits beside "val_auc_undefined": "<why>".
UNDEFINED_SUFFIX = "_undefined"


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)  # numpy scalars register as Real


def json_safe(value: Any, *, convert: Callable[[Any], Any] | None = None) -> Any:
    """`value` with every non-finite float (also numpy scalars and arrays, at any depth) replaced by None,
    numpy scalars and arrays as Python numbers and lists, tuples as lists.

    `convert`, if given, first maps every value at every depth (say, an object to the dict it stands for).
    """
    if convert is not None:
        value = convert(value)
    if isinstance(value, Mapping):
        return {key: json_safe(item, convert=convert) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item, convert=convert) for item in value]
    if hasattr(value, "tolist"):  # numpy arrays and scalars, 0-d tensors
        return json_safe(value.tolist(), convert=convert)
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
