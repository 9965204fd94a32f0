"""Which heatmaps the report shows: a few representative explained frames per model and method.

No Django here. One frame per hand outcome (a CTS hand called CTS, a CTS hand missed, a control called
control, a control called CTS) for each model and method, chosen by a fixed order (hand code, side, frame
index, row id), so two reports of the same database show the same images. The images travel inside the
HTML as data: URIs, so the file opens offline.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable

# Shown in this order: what the model got right, then what it got wrong, CTS hands first.
OUTCOMES = (("TP", "CTS hand called CTS"), ("FN", "CTS hand missed"), ("TN", "control hand called control"),
            ("FP", "control hand called CTS"))
EXAMPLE_KEYS = ("model", "method", "hand_outcome", "study_code", "side", "frame_index", "pk")


def choose_examples(rows: Iterable[dict], *, per_outcome: int = 1) -> list[dict]:
    """The chosen rows grouped per (model, method) in sorted order: {"model", "method", "examples": [row, ...]}.

    rows: one per explained frame with EXAMPLE_KEYS; each group keeps the first `per_outcome` rows of every
    hand outcome in the order of OUTCOMES, by (study_code, side, frame_index, pk).
    """
    grouped: dict[tuple, dict[str, list[dict]]] = {}
    for row in rows:
        missing = [key for key in EXAMPLE_KEYS if key not in row]
        if missing:
            raise ValueError(f"an explained frame lacks {', '.join(missing)}")
        grouped.setdefault((row["model"], row["method"]), {}).setdefault(row["hand_outcome"], []).append(row)
    order = lambda r: (r["study_code"], r["side"], r["frame_index"], r["pk"])  # noqa: E731
    out = []
    for model, method in sorted(grouped):
        by_outcome = grouped[(model, method)]
        examples = [{**row, "outcome_text": text} for outcome, text in OUTCOMES
                    for row in sorted(by_outcome.get(outcome, []), key=order)[:per_outcome]]
        out.append({"model": model, "method": method, "examples": examples})
    return out


def png_data_uri(data: bytes) -> str:
    """A PNG's bytes as a data: URI an <img> shows without a network."""
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        raise ValueError("not a PNG image")
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")
