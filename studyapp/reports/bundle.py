"""The report's bundle as bytes: the same inputs always give the same zip, byte for byte.

No Django here. Entries in sorted order with a fixed timestamp, permissions and compression; JSON with
sorted keys; nothing about when or where the bundle was made.
"""

from __future__ import annotations

import datetime as dt
import decimal
import io
import json
import zipfile

from mlworker.finite import json_safe
from studyapp.dashboards.figures import DataTable

ZIP_TIMESTAMP = (1980, 1, 1, 0, 0, 0)  # the earliest a zip can say: no generation time inside


def _plain(value):
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    if isinstance(value, DataTable):
        return {"columns": value.columns, "rows": value.rows}
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _table(value):
    return _plain(value) if isinstance(value, DataTable) else value


def canonical_json(value) -> bytes:
    """Standard JSON with sorted keys and a fixed layout (one space indent, UTF-8, trailing newline); NaN and
    infinities as null at any depth, as R's and JavaScript's parsers refuse the NaN Python would write."""
    text = json.dumps(json_safe(value, convert=_table), sort_keys=True, indent=1, ensure_ascii=False,
                      allow_nan=False, default=_plain)
    return (text + "\n").encode()


def zip_bytes(files: dict[str, bytes]) -> bytes:
    """A deflated zip of `files` (name → bytes) in sorted order, every entry dated ZIP_TIMESTAMP, mode 0644."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, date_time=ZIP_TIMESTAMP)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # Unix, whatever machine writes it
            info.external_attr = 0o100644 << 16
            archive.writestr(info, files[name], compresslevel=9)
    return buffer.getvalue()


def bundle_files(*, numbers: dict, tables: dict[str, DataTable], manifest: list | None, runs: list[dict],
                 environment: dict, readme: str) -> dict[str, bytes]:
    """The bundle's entries: numbers.json, one CSV per table, the split's manifest, run configs, environment."""
    files = {"README.txt": readme.encode(), "numbers.json": canonical_json(numbers),
             "manifest.json": canonical_json(manifest or []), "environment.json": canonical_json(environment)}
    for name, table in tables.items():
        files[f"csv/{name}.csv"] = table.csv().encode()
    for run in runs:
        files[f"runs/{run['model_name']}.json"] = canonical_json(run)
    return files
