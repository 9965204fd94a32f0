"""The report's choice of heatmaps: one frame per hand outcome per model and method, always the same ones."""

import random

import pytest

from studyapp.reports.heatmaps import OUTCOMES, choose_examples, png_data_uri


def _row(pk, model="squeezenet1_1", method="gradcam", outcome="TP", code="P-001", side="left", index=0):
    return {"pk": pk, "model": model, "method": method, "hand_outcome": outcome, "study_code": code, "side": side,
            "frame_index": index}


def test_one_frame_per_outcome_in_a_fixed_order_whatever_the_row_order():
    rows = [_row(1, outcome="FN", code="P-009"), _row(2, outcome="FN", code="P-002", index=7),
            _row(3, outcome="FN", code="P-002", index=3), _row(4, outcome="TN"), _row(5, outcome="TP", code="P-003"),
            _row(6, method="lime", outcome="FP"), _row(7, model="efficientnet_b0", outcome="TP")]
    chosen = choose_examples(rows)
    shuffled = rows[:]
    random.Random(1).shuffle(shuffled)
    assert choose_examples(shuffled) == chosen
    assert [(g["model"], g["method"]) for g in chosen] == [
        ("efficientnet_b0", "gradcam"), ("squeezenet1_1", "gradcam"), ("squeezenet1_1", "lime")]
    squeeze = chosen[1]["examples"]
    # TP, FN, TN, FP order; the FN is P-002's frame 3 (first by code, side, frame index); no FP exists.
    assert [(e["hand_outcome"], e["pk"]) for e in squeeze] == [("TP", 5), ("FN", 3), ("TN", 4)]
    assert squeeze[1]["outcome_text"] == dict(OUTCOMES)["FN"]
    assert [e["pk"] for e in choose_examples(rows, per_outcome=2)[1]["examples"]] == [5, 3, 2, 4]


def test_rows_without_the_keys_and_non_png_bytes_are_refused():
    with pytest.raises(ValueError, match="lacks side"):
        choose_examples([{k: v for k, v in _row(1).items() if k != "side"}])
    with pytest.raises(ValueError, match="not a PNG"):
        png_data_uri(b"GIF89a")
    assert png_data_uri(b"\x89PNG\r\n\x1a\nabc") == "data:image/png;base64,iVBORw0KGgphYmM="
    assert choose_examples([]) == []
