import math

import numpy as np
import pytest
from sklearn import metrics as skm

from mlworker.stats import (
    BOOTSTRAP_METRICS,
    bootstrap_ci,
    bootstrap_mean_ci,
    bootstrap_mean_replicates,
    bootstrap_replicates,
)


def _hands(seed=0, n_hands=40, frames=10, hand_sd=1.0, frame_sd=0.3, decimals=None):
    """Fixed study-like data: hand-level latent effect shared by all frames of a hand."""
    rng = np.random.default_rng(seed)
    hand_y = (np.arange(n_hands) % 2).astype(int)
    hands = np.repeat(np.arange(n_hands), frames)
    y = hand_y[hands]
    z = 1.2 * (y - 0.5) + rng.normal(0, hand_sd, n_hands)[hands] + rng.normal(0, frame_sd, y.size)
    s = 1.0 / (1.0 + np.exp(-z))
    if decimals is not None:
        s = np.round(s, decimals)
    return y, s, hands


def _slow_replicate_metrics(y, s, idx, threshold):
    """Reference metrics on one replicate, through scikit-learn."""
    yt, st = y[idx], s[idx]
    pred = (st >= threshold).astype(int)
    return {
        "accuracy": skm.accuracy_score(yt, pred),
        "precision": skm.precision_score(yt, pred, zero_division=np.nan),
        "recall": skm.recall_score(yt, pred),
        "specificity": skm.recall_score(yt, pred, pos_label=0),
        "f1": skm.f1_score(yt, pred),
        "auc": skm.roc_auc_score(yt, st),
    }


@pytest.mark.parametrize("clustered", [False, True])
def test_replicates_match_slow_loop_on_documented_draws(clustered):
    # Rounded scores create ties within and across classes; unequal hand sizes test the expansion.
    y, s, hands = _hands(seed=3, n_hands=16, frames=6, decimals=1)
    keep = np.ones(y.size, bool)
    keep[[0, 1, 2, 13, 50]] = False  # hands 0, 2, 8 lose frames
    y, s, hands = y[keep], s[keep], hands[keep]
    n_boot, seed, thr = 60, 42, 0.6
    reps = bootstrap_replicates(
        y, s, threshold=thr, n_boot=n_boot, seed=seed, clusters=hands if clustered else None
    )
    rng = np.random.default_rng(seed)
    if clustered:
        strata = [np.unique(hands[y == c]) for c in (0, 1)]
        draws = [rng.integers(0, u.size, size=(n_boot, u.size)) for u in strata]
    else:
        strata = [np.flatnonzero(y == c) for c in (0, 1)]
        draws = [rng.integers(0, u.size, size=(n_boot, u.size)) for u in strata]
    for r in range(n_boot):
        units = np.concatenate([strata[0][draws[0][r]], strata[1][draws[1][r]]])
        if clustered:
            idx = np.concatenate([np.flatnonzero(hands == h) for h in units])
        else:
            idx = units
        ref = _slow_replicate_metrics(y, s, idx, thr)
        for name in BOOTSTRAP_METRICS:
            np.testing.assert_allclose(reps[name][r], ref[name], rtol=0, atol=1e-12, err_msg=name)
        assert reps["n_pos"][r] == y[idx].sum() and reps["n_neg"][r] == (1 - y[idx]).sum()


def test_seeded_reproducibility():
    y, s, hands = _hands()
    a = bootstrap_ci(y, s, n_boot=300, seed=5, clusters=hands)
    b = bootstrap_ci(y, s, n_boot=300, seed=5, clusters=hands)
    c = bootstrap_ci(y, s, n_boot=300, seed=6, clusters=hands)
    assert a == b
    assert a["auc"] != c["auc"]


@pytest.mark.parametrize("clustered", [False, True])
def test_intervals_contain_estimate_and_describe_themselves(clustered):
    y, s, hands = _hands(n_hands=60, frames=8)
    res = bootstrap_ci(y, s, n_boot=500, seed=1, level=0.9, clusters=hands if clustered else None)
    for name in BOOTSTRAP_METRICS:
        r = res[name]
        assert r["low"] <= r["estimate"] <= r["high"], name
        assert r["low"] < r["high"], name
        assert r["n_undefined"] == 0
    assert res["kind"] == ("hands (cluster)" if clustered else "frames")
    assert (res["n_boot"], res["seed"], res["level"], res["n_frames"]) == (500, 1, 0.9, 480)
    assert res["n_clusters"] == (60 if clustered else None)
    assert (res["n_units_neg"], res["n_units_pos"]) == ((30, 30) if clustered else (240, 240))


def test_cluster_intervals_wider_when_frames_within_hands_correlate():
    y, s, hands = _hands(n_hands=60, frames=20, hand_sd=1.5, frame_sd=0.1)
    frames = bootstrap_ci(y, s, n_boot=800, seed=2)
    clustered = bootstrap_ci(y, s, n_boot=800, seed=2, clusters=hands)
    for name in ("auc", "accuracy", "recall", "specificity"):
        w_f = frames[name]["high"] - frames[name]["low"]
        w_c = clustered[name]["high"] - clustered[name]["low"]
        # 20 near-identical frames per hand: the effective sample is ~hands, so ~sqrt(20)x wider.
        assert w_c > 2.5 * w_f, name


def test_class_counts_preserved_in_every_replicate():
    y, s, hands = _hands(n_hands=30, frames=20)
    reps = bootstrap_replicates(y, s, n_boot=400, seed=9)
    assert (reps["n_pos"] == y.sum()).all() and (reps["n_neg"] == (1 - y).sum()).all()
    # Cluster mode keeps the number of hands per class; with 20 frames per hand so do frame counts.
    reps = bootstrap_replicates(y, s, n_boot=400, seed=9, clusters=hands)
    assert (reps["n_pos"] == 15 * 20).all() and (reps["n_neg"] == 15 * 20).all()


def test_undefined_precision_is_counted_not_propagated():
    # Only 2 of 40 negatives and 1 of 40 positives reach the threshold: some replicates have
    # no predicted positive, so precision is 0/0 there.
    y = np.r_[np.zeros(40, int), np.ones(40, int)]
    s = np.full(80, 0.1)
    s[[3, 17, 60]] = 0.9
    res = bootstrap_ci(y, s, n_boot=400, seed=0)
    assert res["precision"]["n_undefined"] > 0
    assert math.isfinite(res["precision"]["low"]) and math.isfinite(res["precision"]["high"])
    assert res["recall"]["n_undefined"] == 0


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(y_true=[1, 1, 1], y_score=[0.1, 0.2, 0.3]), "only one class"),
        (dict(y_true=[0, 1, 1], y_score=[0.1, 0.2]), "length mismatch"),
        (dict(y_true=[0, 1], y_score=[0.1, float("nan")]), "NaN"),
        (dict(y_true=[0, 1], y_score=[0.1, 0.2], n_boot=0), "n_boot"),
        (dict(y_true=[0, 1], y_score=[0.1, 0.2], n_boot=2.5), "n_boot"),
        (dict(y_true=[0, 1], y_score=[0.1, 0.2], level=1.5), "level"),
        (dict(y_true=[0, 1], y_score=[0.1, 0.2], clusters=[1]), "length mismatch"),
        (dict(y_true=[0, 1, 1], y_score=[0.1, 0.2, 0.3], clusters=[1, 1, 2]), "different labels"),
    ],
)
def test_bad_input_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        bootstrap_ci(**kwargs)


def _hand_values(seed=0, n_hands=12, k=2):
    """Per-frame values with a hand effect, uneven frames per hand, labels by hand, some NaN (missing)."""
    rng = np.random.default_rng(seed)
    frames = rng.integers(1, 5, n_hands)
    hands = np.repeat(np.arange(n_hands) * 10 + 7, frames)  # ids are not 0..n-1
    labels = (hands // 10) % 2
    v = rng.normal(0, 1, (n_hands, k))[np.repeat(np.arange(n_hands), frames)] + rng.normal(0, 0.2, (hands.size, k))
    v[rng.random(v.shape) < 0.15] = np.nan
    return v, hands, labels


@pytest.mark.parametrize("clustered", [False, True])
def test_mean_replicates_match_slow_loop_on_documented_draws(clustered):
    v, hands, labels = _hand_values(seed=4)
    n_boot, seed = 50, 11
    reps = bootstrap_mean_replicates(
        v, clusters=hands if clustered else None, strata=labels, n_boot=n_boot, seed=seed
    )
    rng = np.random.default_rng(seed)
    if clustered:
        strata = [np.unique(hands[labels == c]) for c in (0, 1)]
    else:
        strata = [np.flatnonzero(labels == c) for c in (0, 1)]
    draws = [rng.integers(0, u.size, size=(n_boot, u.size)) for u in strata]
    for r in range(n_boot):
        units = np.concatenate([strata[0][draws[0][r]], strata[1][draws[1][r]]])
        idx = np.concatenate([np.flatnonzero(hands == h) for h in units]) if clustered else units
        with np.errstate(invalid="ignore"):
            ref = np.nanmean(v[idx], axis=0) if (~np.isnan(v[idx])).any(axis=0).all() else None
        if ref is not None:
            np.testing.assert_allclose(reps[r], ref, rtol=0, atol=1e-12)


def test_mean_ci_weights_frames_and_resamples_hands_not_frames():
    v, hands, labels = _hand_values(seed=1, n_hands=30, k=1)
    res = bootstrap_mean_ci(v, clusters=hands, strata=labels, n_boot=500, seed=3)
    assert res["estimate"][0] == pytest.approx(np.nanmean(v))  # a mean over frames
    assert res["low"][0] < res["estimate"][0] < res["high"][0]
    assert res["n_values"][0] == (~np.isnan(v)).sum() and res["n_undefined"][0] == 0
    assert (res["kind"], res["n_clusters"], res["n_strata"]) == ("hands (cluster)", 30, 2)
    # Ten copies of every frame add no hands: the hand bootstrap gives the same interval, a frame
    # bootstrap of the copies pretends to ten times the evidence.
    copies = np.repeat(v, 10, axis=0)
    same = bootstrap_mean_ci(copies, clusters=np.repeat(hands, 10), strata=np.repeat(labels, 10), n_boot=500, seed=3)
    np.testing.assert_allclose([same["low"], same["high"]], [res["low"], res["high"]], rtol=1e-12)
    frames = bootstrap_mean_ci(copies, strata=np.repeat(labels, 10), n_boot=500, seed=3)
    assert frames["high"][0] - frames["low"][0] < 0.5 * (res["high"][0] - res["low"][0])


def test_mean_ci_column_without_values_is_undefined():
    v = np.array([[1.0, np.nan], [2.0, np.nan], [3.0, np.nan]])
    res = bootstrap_mean_ci(v, clusters=[1, 2, 3], n_boot=20)
    assert res["estimate"][0] == 2.0 and np.isnan(res["estimate"][1])
    assert np.isnan(res["low"][1]) and res["n_undefined"][1] == 20 and res["n_values"][1] == 0


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(values=[1.0, 2.0], clusters=[1, 1], strata=[0, 1]), "different strata"),
        (dict(values=[1.0, np.inf]), "infinite"),
        (dict(values=np.zeros((0, 2))), "non-empty"),
        (dict(values=[1.0, 2.0], strata=[0]), "one entry per frame"),
        (dict(values=[1.0, 2.0], clusters=[1]), "length mismatch"),
        (dict(values=[1.0, 2.0], n_boot=0), "n_boot"),
        (dict(values=[1.0, 2.0], level=0), "level"),
    ],
)
def test_mean_ci_bad_input_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        bootstrap_mean_ci(**kwargs)
