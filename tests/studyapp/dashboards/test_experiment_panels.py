"""The experiment dashboard's panels on fixed stored results: the figures show exactly what the runs stored."""

import numpy as np
import plotly.graph_objects as go
import pytest

from mlworker.stats import evaluate_predictions, wilson_interval
from studyapp.dashboards import experiment_panels as panels

LABELS = {"squeezenet1_1": "SqueezeNet 1.1", "efficientnet_b0": "EfficientNet-B0"}
HANDS = {1: {"stage": 1, "study_code": "A", "side": "left"}, 2: {"stage": 1, "study_code": "B", "side": "left"},
         3: {"stage": 2, "study_code": "C", "side": "right"}, 4: {"stage": 4, "study_code": "D", "side": "left"}}


def _run(pk, model, probabilities):
    hand_ids = [1, 1, 2, 2, 3, 3, 4, 4]
    labels = [0, 0, 0, 0, 1, 1, 1, 1]
    return {"pk": pk, "model_name": model, "status": "done", "epochs_done": 2, "epochs": 2,
            "history": [{"epoch": 1, "train_loss": 0.6, "val_loss": 0.7, "val_auc": 0.7},
                        {"epoch": 2, "train_loss": 0.4, "val_loss": 0.5, "val_auc": 0.8}],
            "evaluation": evaluate_predictions(labels, probabilities, hand_ids, n_boot=50, seed=0),
            "predictions": {"frame_ids": list(range(8)), "hand_ids": hand_ids, "labels": labels,
                            "probabilities": probabilities}}


RUNS = [_run(1, "squeezenet1_1", [0.1, 0.3, 0.7, 0.6, 0.8, 0.9, 0.2, 0.4]),  # hand 2 and hand 4 wrong
        _run(2, "efficientnet_b0", [0.1, 0.2, 0.3, 0.1, 0.8, 0.9, 0.7, 0.6])]


def test_roc_traces_are_the_stored_curves_with_the_auc_and_its_ci_in_the_legend():
    frame, hand = panels.roc_panels(RUNS, LABELS, None, 0.5)
    for panel, level in ((frame, "frame"), (hand, "hand")):
        go.Figure(panel.figure)
        curves = [t for t in panel.figure["data"] if t["mode"] == "lines" and t["name"] != "chance"]
        for run, trace in zip(RUNS, curves):
            stored = run["evaluation"][level]
            assert trace["x"] == stored["roc"]["fpr"] and trace["y"] == stored["roc"]["tpr"]
            low, high = stored["auc_delong_ci"]
            assert f"AUC {stored['metrics']['auc']:.3f} [{low:.3f}, {high:.3f}]" in trace["name"]


def test_the_confusion_heatmaps_hold_the_stored_counts():
    for panel in panels.confusion_panels(RUNS, LABELS):
        run = RUNS[0] if "SqueezeNet" in panel.title else RUNS[1]
        level = "frame" if "frame level" in panel.title else "hand"
        (heatmap,) = panel.figure["data"]
        assert heatmap["z"] == run["evaluation"][level]["confusion_matrix"]
        assert sum(map(sum, heatmap["z"])) == run["evaluation"][level]["n"]
        texts = [a["text"] for a in panel.figure["layout"]["annotations"]]
        assert [int(t.split("</b>")[0][3:]) for t in texts] == [n for row in heatmap["z"] for n in row]


def test_errors_by_stage_count_the_hands_right_per_stage_with_wilson_intervals():
    rows = panels.hand_rows(RUNS[0], HANDS, threshold=0.5, hand_url="/cohort/hands/{pk}/")
    assert [(r["pk"], r["correct"]) for r in rows] == [(1, True), (2, False), (3, True), (4, False)]
    assert rows[1]["low"] == 0.6 and rows[1]["high"] == 0.7 and rows[1]["url"] == "/cohort/hands/2/"
    control, stage2, stage3, stage4, stage5 = panels.stage_errors(rows)
    assert control == (0.5, *wilson_interval(1, 2), 1, 2)
    assert stage2[0] == 1.0 and stage4[0] == 0.0 and stage3 is None and stage5 is None


def test_delong_rows_carry_the_wald_ci_of_each_difference():
    test = {"auc_a": 0.9, "auc_b": 0.8, "difference": 0.1, "se": 0.05, "z": 2.0, "p_value": 0.0455}
    rows = panels.delong_rows({"delong": {"pairs": [{"model_a": "efficientnet_b0", "model_b": "squeezenet1_1",
                                                     "frame": test, "hand": test}]}}, LABELS)
    (pair,) = rows["pairs"]
    assert pair["a"] == "EfficientNet-B0"
    assert pair["frame"]["ci_low"] == pytest.approx(0.1 - 1.959964 * 0.05)
    assert pair["hand"]["ci_high"] == pytest.approx(0.1 + 1.959964 * 0.05)


def test_calibration_uses_the_stored_probabilities():
    figures_, scores = panels.calibration_panels(RUNS, LABELS)
    for figure in figures_:
        go.Figure(figure.figure)
    predictions = RUNS[1]["predictions"]
    expected = np.mean((np.array(predictions["probabilities"]) - np.array(predictions["labels"])) ** 2)
    assert scores[1]["frame"] == pytest.approx(expected)


def test_training_curves_plot_each_epoch_of_the_history():
    loss, auc = panels.training_panels(RUNS, LABELS)
    assert [t["y"] for t in loss.figure["data"][:2]] == [[0.6, 0.4], [0.7, 0.5]]
    assert auc.figure["data"][0]["x"] == [1, 2] and auc.figure["data"][0]["name"] == "SqueezeNet 1.1"
