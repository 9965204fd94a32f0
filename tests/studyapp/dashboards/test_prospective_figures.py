"""Prospective figures as pure functions on the statistics' output: valid plotly, strict JSON (no NaN), the
expected traces, and the numbers drawn as computed."""

import json
import math

import numpy as np
import plotly.graph_objects as go
import pytest
from scipy.special import expit, logit

from mlworker.stats.prospective import accrual_curve, prospective_summary
from studyapp.dashboards import prospective_figures as pf
from studyapp.dashboards.figures import GROUP_COLOURS, Panel

rng = np.random.default_rng(6)
P = expit(rng.normal(0.0, 1.5, 60))
Y = (rng.random(60) < P).astype(int)
TIMES = list(rng.permutation(60))


def _strict(figure: dict) -> dict:
    text = json.dumps(figure, allow_nan=False)  # raises on NaN or infinity
    assert "NaN" not in text and "Infinity" not in text
    return json.loads(text)


def _check(panel: Panel) -> None:
    assert isinstance(panel, Panel)
    _strict(panel.figure)
    go.Figure(panel.figure)  # valid plotly
    assert panel.table.csv().count("\n") == len(panel.table.rows) + 1


def test_accrual_figure_draws_each_estimate_with_its_band():
    curve = accrual_curve(Y, P, TIMES, threshold=0.5)
    panel = pf.accrual_figure(curve)
    _check(panel)
    traces = {t["name"]: t for t in panel.figure["data"]}
    assert list(traces) == [f"{label}{part}" for label in ("Sensitivity", "Specificity", "AUC")
                            for part in (" upper bound", " lower bound", "")]
    sens = traces["Sensitivity"]
    assert sens["x"] == list(range(1, 61)) and sens["line"]["color"] == GROUP_COLOURS["cts"]
    assert traces["Specificity"]["line"]["color"] == GROUP_COLOURS["control"]
    assert sens["y"][-1] == pytest.approx(curve[-1]["sensitivity"]["estimate"], abs=1e-4)
    assert traces["Sensitivity lower bound"]["fill"] == "tonexty"
    assert traces["Sensitivity upper bound"]["y"][-1] == pytest.approx(curve[-1]["sensitivity"]["high"], abs=1e-4)
    # Before both classes are scored the AUC is undefined: a gap (None), never NaN.
    first_both = next(i for i, row in enumerate(curve) if row["n_pos"] and row["n_neg"])
    assert traces["AUC"]["y"][:first_both] == [None] * first_both
    assert traces["AUC"]["y"][first_both] is not None
    assert len(panel.table.rows) == 60 and len(panel.table.columns) == len(panel.table.rows[0])


def test_accrual_figure_of_a_single_hand_and_of_none():
    _check(pf.accrual_figure(accrual_curve([1], [0.7], [0], threshold=0.5)))
    empty = pf.accrual_figure([])
    _check(empty)
    assert all(t["x"] == [] for t in empty.figure["data"])


def test_calibration_figure_has_the_diagonal_the_bins_with_counts_and_the_recalibration_curve():
    summary = prospective_summary(Y, P, threshold=0.5)
    panel = pf.calibration_figure(summary)
    _check(panel)
    diagonal, points, fitted = panel.figure["data"]
    assert (diagonal["x"], diagonal["y"]) == ([0, 1], [0, 1])
    bins = summary["calibration_bins"]
    assert points["text"] == [f"n={b['n']}" for b in bins]
    assert points["y"] == pytest.approx([b["observed"] for b in bins], abs=1e-4)
    assert points["error_y"]["array"][0] == pytest.approx(bins[0]["observed_ci"][1] - bins[0]["observed"], abs=1e-4)
    assert f"Brier {summary['brier']:.3f}" in points["name"]
    a = summary["recalibration"]["intercept"]["estimate"]
    b = summary["recalibration"]["slope"]["estimate"]
    assert fitted["y"] == pytest.approx(list(expit(a + b * logit(np.array(fitted["x"])))), abs=2e-4)
    assert [row[2] for row in panel.table.rows] == [b["n"] for b in bins]
    assert any("Mean predicted minus observed" in note for note in panel.notes)


def test_calibration_figure_without_a_fit_says_why():
    summary = prospective_summary([1, 0, 1], [0.9, 0.2, 0.6], threshold=0.5)
    panel = pf.calibration_figure(summary)
    _check(panel)
    assert [t["name"].split(" (")[0] for t in panel.figure["data"]] == ["perfect calibration", "hands per bin"]
    assert any("fewer than" in note for note in panel.notes)
    assert not any(isinstance(v, float) and math.isnan(v) for t in panel.figure["data"] for v in t["y"])
