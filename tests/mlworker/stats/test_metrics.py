import math

import numpy as np
import pytest
from sklearn import metrics as skm

from mlworker.stats import (
    aggregate_by_cluster,
    binary_metrics,
    confusion,
    roc_auc,
    roc_curve,
)


def _data(seed=11, n=300):
    """Fixed labels and scores rounded to 2 decimals so that ties occur within and across classes."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.4).astype(int)
    s = np.clip(np.round(0.35 * y + rng.normal(0.4, 0.2, n), 2), 0, 1)
    return y, s


def test_confusion_matches_sklearn_layout():
    y, s = _data()
    pred = (s >= 0.5).astype(int)
    np.testing.assert_array_equal(confusion(y, pred), skm.confusion_matrix(y, pred, labels=[0, 1]))
    # Booleans are labels too, and a class absent from predictions still gets its zero row/column.
    np.testing.assert_array_equal(
        confusion([True, False, True], [False, False, False]), [[1, 0], [2, 0]]
    )


@pytest.mark.parametrize("threshold", [0.3, 0.5, 0.62])
def test_binary_metrics_match_sklearn(threshold):
    y, s = _data()
    pred = (s >= threshold).astype(int)
    m = binary_metrics(y, s, threshold=threshold)
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert m["precision"] == pytest.approx(skm.precision_score(y, pred))
    assert m["recall"] == pytest.approx(skm.recall_score(y, pred))
    assert m["specificity"] == pytest.approx(skm.recall_score(y, pred, pos_label=0))
    assert m["f1"] == pytest.approx(skm.f1_score(y, pred))
    assert m["auc"] == pytest.approx(skm.roc_auc_score(y, s))
    tn, fp, fn, tp = skm.confusion_matrix(y, pred).ravel()
    assert (m["tn"], m["fp"], m["fn"], m["tp"]) == (tn, fp, fn, tp)
    assert m["n"] == y.size and m["threshold"] == threshold


def test_score_equal_to_threshold_is_positive():
    m = binary_metrics([0, 1], [0.2, 0.5], threshold=0.5)
    assert (m["tp"], m["fp"]) == (1, 0)


def test_zero_denominators_give_nan_or_zero_as_documented():
    # Nothing reaches the threshold: precision is 0/0 -> nan; recall = 0; f1 = 2TP/(2TP+FP+FN) = 0.
    m = binary_metrics([0, 0, 1, 1], [0.1, 0.2, 0.3, 0.4], threshold=0.9)
    assert math.isnan(m["precision"])
    assert m["recall"] == 0.0 and m["specificity"] == 1.0 and m["f1"] == 0.0
    assert m["f1"] == skm.f1_score([0, 0, 1, 1], [0, 0, 0, 0], zero_division=0)


def test_roc_curve_matches_sklearn_without_dropping_points():
    y, s = _data()
    r = roc_curve(y, s)
    fpr, tpr, thr = skm.roc_curve(y, s, drop_intermediate=False)
    assert r["fpr"][0] == 0.0 and r["tpr"][0] == 0.0 and r["thresholds"][0] == math.inf
    np.testing.assert_allclose(r["fpr"], fpr)
    np.testing.assert_allclose(r["tpr"], tpr)
    np.testing.assert_allclose(r["thresholds"][1:], thr[1:])
    assert r["fpr"][-1] == 1.0 and r["tpr"][-1] == 1.0
    assert all(isinstance(v, float) for v in r["fpr"] + r["tpr"] + r["thresholds"])


def test_roc_auc_matches_sklearn_and_hand_value():
    y, s = _data(seed=5)
    assert roc_auc(y, s) == pytest.approx(skm.roc_auc_score(y, s))
    # Pairs (pos, neg): (0.8 > 0.6), (0.8 > 0.2), (0.6 = 0.6 -> 1/2), (0.6 > 0.2) -> 3.5 / 4.
    assert roc_auc([1, 1, 0, 0], [0.8, 0.6, 0.6, 0.2]) == 0.875


def test_aggregate_by_cluster_means_frames_per_hand():
    y = [1, 1, 1, 0, 0]
    s = [0.9, 0.7, 0.2, 0.4, 0.0]
    ids, labels, means = aggregate_by_cluster(y, s, ["h2", "h2", "h1", "h3", "h3"])
    assert ids.tolist() == ["h1", "h2", "h3"]
    assert labels.tolist() == [1, 1, 0]
    np.testing.assert_allclose(means, [0.2, 0.8, 0.2])


def test_aggregate_by_cluster_refuses_mixed_labels():
    with pytest.raises(ValueError, match="different labels.*7"):
        aggregate_by_cluster([1, 0, 1], [0.1, 0.2, 0.3], [7, 7, 8])
    with pytest.raises(ValueError, match="length mismatch"):
        aggregate_by_cluster([1, 0], [0.1, 0.2], [1, 2, 3])


@pytest.mark.parametrize(
    "y, s, message",
    [
        ([1, 1, 1], [0.1, 0.2, 0.3], "only one class"),
        ([0, 1, 1], [0.1, 0.2], "length mismatch"),
        ([0, 1, 1], [0.1, float("nan"), 0.3], "NaN"),
        ([0, 1, 2], [0.1, 0.2, 0.3], "only 0 and 1"),
        ([[0, 1]], [[0.1, 0.2]], "1-D"),
        ([], [], "empty"),
    ],
)
def test_bad_input_refused(y, s, message):
    for fn in (binary_metrics, roc_curve, roc_auc):
        with pytest.raises(ValueError, match=message):
            fn(y, s)


def test_nan_threshold_refused():
    with pytest.raises(ValueError, match="threshold is NaN"):
        binary_metrics([0, 1], [0.1, 0.9], threshold=float("nan"))
