"""The experiment dashboard's summary and figures as pure functions on fixed data: the traces are the stored
numbers, the heatmap's counts are the confusion matrix, calibration and per-stage rates match a hand count."""

import math

import plotly.graph_objects as go
import pytest

from mlworker.stats import evaluate_predictions, wilson_interval
from studyapp.dashboards import experiment_figures as ef
from studyapp.dashboards.experiment_summary import by_stage, calibration, evaluation_summary, per_hand
from studyapp.dashboards.figures import OKABE_ITO, SERIES

# Six hands of two frames: hands 1–3 control (stage 1, 1, None), 4–6 CTS (stages 2, 3, 5).
LABELS = [0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1]
PROBS = [0.05, 0.15, 0.30, 0.50, 0.62, 0.70, 0.40, 0.45, 0.81, 0.95, 0.58, 0.99]
HANDS = [1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6]
STAGES = {1: 1, 2: 1, 3: None, 4: 2, 5: 3, 6: 5}


@pytest.fixture(scope="module")
def evaluation():
    result = evaluate_predictions(LABELS, PROBS, HANDS, n_boot=200)
    result["dashboard"] = evaluation_summary(LABELS, PROBS, HANDS, stages=STAGES, threshold=0.5)
    return result


def test_calibration_bins_and_brier_by_hand():
    result = calibration(LABELS, PROBS, bins=10)
    by_low = {round(b["low"], 1): b for b in result["bins"]}
    # 0.40 and 0.45 fall in [0.4, 0.5); 0.50 opens [0.5, 0.6) with 0.58; 0.95 and 0.99 close the last bin.
    assert by_low[0.4]["n"] == 2 and by_low[0.4]["observed"] == 1.0
    assert by_low[0.4]["mean_predicted"] == pytest.approx(0.425)
    assert by_low[0.5]["n"] == 2 and by_low[0.5]["observed"] == 0.5
    assert by_low[0.9]["n"] == 2 and by_low[0.9]["mean_predicted"] == pytest.approx(0.97)
    assert sum(b["n"] for b in result["bins"]) == 12 and 0.2 not in by_low  # empty bins are left out
    brier = sum((p - y) ** 2 for p, y in zip(PROBS, LABELS)) / 12
    assert result["brier"] == pytest.approx(brier)
    assert calibration([1], [1.0])["bins"][0]["low"] == 0.9  # a probability of 1 is in the last bin


def test_per_hand_spread_and_sensitivity_per_stage():
    hands = per_hand(LABELS, PROBS, HANDS, STAGES)
    assert [h["hand"] for h in hands] == [1, 2, 3, 4, 5, 6]
    assert hands[1] == {**hands[1], "mean": pytest.approx(0.4), "min": 0.30, "max": 0.50, "n_frames": 2,
                        "stage": 1, "label": 0}
    assert hands[1]["sd"] == pytest.approx(math.sqrt(0.02))
    rows = {row["stage"]: row for row in by_stage(hands, threshold=0.5)}
    # Controls: means 0.10, 0.40, 0.66 → two of three below 0.5.
    assert (rows["control"]["correct"], rows["control"]["n"]) == (2, 3)
    assert rows["control"]["ci"] == pytest.approx(list(wilson_interval(2, 3)))
    # CTS: stage 2 mean 0.425 missed; stage 3 0.88 and stage 5 0.785 found; stage 4 has no hand.
    assert (rows["2"]["correct"], rows["2"]["n"], rows["2"]["value"]) == (0, 1, 0.0)
    assert (rows["3"]["value"], rows["5"]["value"]) == (1.0, 1.0)
    assert rows["4"]["n"] == 0 and rows["4"]["value"] is None and rows["4"]["ci"] is None
    assert "unstaged" not in rows


def _assert_same_curve(trace: dict, roc: dict) -> None:
    """The trace draws the stored curve: its points are stored points, in order, from the first to the last, and
    every stored point left out lies on the segment between the drawn points around it."""
    points = list(zip(roc["fpr"], roc["tpr"]))
    drawn = list(zip(trace["x"], trace["y"]))
    index = [points.index(p) for p in drawn]
    assert index == sorted(index) and index[0] == 0 and index[-1] == len(points) - 1
    for a, b in zip(index, index[1:]):
        (x0, y0), (x1, y1) = points[a], points[b]
        for x, y in points[a + 1:b]:
            assert abs((x - x0) * (y1 - y0) - (y - y0) * (x1 - x0)) < 1e-12
            assert min(x0, x1) <= x <= max(x0, x1) and min(y0, y1) <= y <= max(y0, y1)


def test_roc_vertices_keep_the_corners_of_a_long_staircase():
    import numpy as np

    from mlworker.stats import roc_curve

    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, 3000)
    roc = roc_curve(labels, rng.normal(labels * 1.5, 1.0))
    vertices = ef.roc_vertices(roc["fpr"], roc["tpr"])
    assert len(vertices) < len(roc["fpr"]) / 2  # thousands of points, most on straight stretches
    _assert_same_curve({"x": [roc["fpr"][i] for i in vertices], "y": [roc["tpr"][i] for i in vertices]}, roc)
    assert ef.roc_vertices([0, 1], [0, 1]) == [0, 1]


def test_roc_traces_are_the_stored_curves_with_auc_ci_in_the_legend(evaluation):
    baseline = {"roc": {"fpr": [0, 0, 1], "tpr": [0, 1, 1], "thresholds": [None, 12.0, 8.0]},
                "metrics": {"auc": 1.0, "tn": 3, "fp": 0, "fn": 0, "tp": 3, "threshold": 10.5},
                "auc_delong_ci": [1.0, 1.0], "auc_ci_method": "DeLong"}
    for level in ("frame", "hand"):
        panel = ef.roc_figure(level=level, models=[{"label": "SqueezeNet 1.1", "colour": SERIES[0],
                                                    "result": evaluation[level]}],
                              baseline=baseline if level == "hand" else None)
        go.Figure(panel.figure)  # valid plotly
        curve = next(t for t in panel.figure["data"] if t["name"].startswith("SqueezeNet 1.1: AUC"))
        _assert_same_curve(curve, evaluation[level]["roc"])
        point = next(t for t in panel.figure["data"]
                     if t["mode"] == "markers" and t["legendgroup"] == "SqueezeNet 1.1")
        m = evaluation[level]["metrics"]
        assert point["x"] == [m["fp"] / (m["fp"] + m["tn"])] and point["y"] == [m["tp"] / (m["tp"] + m["fn"])]
        assert len(panel.table.rows) == len(curve["x"]) + (len(ef.roc_vertices([0, 0, 1], [0, 1, 1]))
                                                           if level == "hand" else 0)
    frame_name = ef.roc_figure(level="frame", models=[{"label": "S", "colour": SERIES[0],
                                                       "result": evaluation["frame"]}]).figure["data"][1]["name"]
    low, high = evaluation["frame"]["auc_delong_ci"]
    assert f"95% CI {low:.3f}–{high:.3f}, Obuchowski clustered by hand" in frame_name
    hand = ef.roc_figure(level="hand", models=[{"label": "S", "colour": SERIES[0], "result": evaluation["hand"]}],
                         baseline=baseline).figure["data"]
    boot = evaluation["hand"]["ci"]["resampling_hands"]["auc"]
    assert f"95% CI {boot['low']:.3f}–{boot['high']:.3f}, bootstrap over hands" in hand[1]["name"]
    csa = next(t for t in hand if t["name"].startswith("Manual CSA: AUC"))
    assert csa["x"] == [0, 0, 1] and csa["line"]["dash"] == "dash" and csa["line"]["color"] == OKABE_ITO["black"]


def test_confusion_heatmaps_count_the_confusion_matrices(evaluation):
    frame, hand = evaluation["frame"]["confusion_matrix"], evaluation["hand"]["confusion_matrix"]
    panel = ef.confusion_figure(key="confusion-s", label="S", frame=frame, hand=hand, threshold=0.5)
    go.Figure(panel.figure)
    heatmaps = panel.figure["data"]
    assert heatmaps[0]["z"] == frame and heatmaps[1]["z"] == hand
    assert heatmaps[0]["y"] == ["control", "CTS"] and heatmaps[0]["x"] == ["control", "CTS"]
    assert [row[3] for row in panel.table.rows] == [n for matrix in (frame, hand) for row in matrix for n in row]
    assert heatmaps[1]["text"][1][1].startswith(f"<b>{hand[1][1]}</b>")


def test_per_hand_stage_calibration_and_training_figures(evaluation):
    summary = evaluation["dashboard"]
    rows = [{**h, "name": f"H{h['hand']}", "url": f"/cohort/hands/{h['hand']}/"} for h in summary["hands"]]
    hands = ef.per_hand_figure(key="hands-s", label="S", hands=rows, threshold=0.5)
    go.Figure(hands.figure)
    control, cts = hands.figure["data"]
    assert control["x"] == ["H1", "H2", "H3"] and cts["marker"]["color"] == OKABE_ITO["vermillion"]
    assert cts["customdata"][0][0] == "/cohort/hands/4/" and hands.figure["layout"]["meta"] == {"click_url": True}
    assert [r[-1] for r in hands.table.rows] == ["yes", "yes", "no", "no", "yes", "yes"]  # sorted by mean

    stage = ef.stage_figure([{"label": "S", "colour": SERIES[0], "by_stage": summary["by_stage"]}])
    go.Figure(stage.figure)
    bars = stage.figure["data"][0]
    assert bars["x"][:2] == ["controls (specificity)", "stage 2"] and bars["y"][:2] == [2 / 3, 0.0]

    cal = ef.calibration_figure(level="hand", models=[{"label": "S", "colour": SERIES[0],
                                                       "calibration": summary["calibration"]["hand"]}])
    go.Figure(cal.figure)
    assert cal.figure["data"][1]["y"] == [b["observed"] for b in summary["calibration"]["hand"]["bins"]]
    assert f"Brier {summary['calibration']['hand']['brier']:.3f}" in cal.figure["data"][1]["name"]

    history = [{"epoch": 1, "train_loss": 0.7, "val_loss": 0.8, "val_auc": 0.6, "val_accuracy": 0.55},
               {"epoch": 2, "train_loss": 0.5, "val_loss": 0.6, "val_auc": 0.7, "val_accuracy": 0.65}]
    loss, metrics = ef.training_curves([{"label": "S", "colour": SERIES[1], "history": history}])
    go.Figure(loss.figure), go.Figure(metrics.figure)
    assert loss.figure["data"][1]["y"] == [0.8, 0.6] and metrics.figure["data"][0]["y"] == [0.6, 0.7]
    assert loss.table.rows == [["S", 1, 0.7, 0.8], ["S", 2, 0.5, 0.6]]


def test_auc_differences_forest():
    panel = ef.auc_difference_figure([("A − B (hands)", 0.1, -0.05, 0.25)])
    go.Figure(panel.figure)
    trace = panel.figure["data"][0]
    assert trace["x"] == [0.1] and trace["error_x"]["array"] == [pytest.approx(0.15)]
    assert trace["error_x"]["arrayminus"] == [pytest.approx(0.15)]


def test_attribution_figure_draws_each_share_with_its_interval_beside_the_area():
    summary = {"model": "squeezenet1_1", "method": "gradcam", "n_frames": 12, "n_hands": 4,
               "nerve": {"estimate": 0.4, "low": 0.3, "high": 0.55}, "nerve_area": {"estimate": 0.1},
               "ring": {"estimate": 0.2, "low": 0.1, "high": 0.25}, "ring_area": {"estimate": 0.15}}
    assert ef.attribution_figure([summary], {}).figure["data"][0]["y"] == ["squeezenet1_1 · gradcam"]
    panel = ef.attribution_figure([summary], {"squeezenet1_1": "SqueezeNet 1.1"})
    go.Figure(panel.figure)
    nerve, nerve_area, ring, ring_area = panel.figure["data"]
    assert nerve["y"] == ["SqueezeNet 1.1 · gradcam"] and nerve["x"] == [0.4] and nerve_area["x"] == [0.1]
    assert nerve["error_x"]["array"] == [pytest.approx(0.15)] and ring["error_x"]["arrayminus"] == [pytest.approx(0.1)]
    assert panel.table.rows == [["SqueezeNet 1.1 · gradcam", 12, 4, 0.4, 0.3, 0.55, 0.1, 0.2, 0.1, 0.25, 0.15]]
    named = ef.attribution_figure([summary], {"squeezenet1_1": "SqueezeNet 1.1"}, {"gradcam": "Grad-CAM"})
    assert named.figure["data"][0]["y"] == ["SqueezeNet 1.1 · Grad-CAM"] and named.table.rows[0][0] == "SqueezeNet 1.1 · Grad-CAM"
