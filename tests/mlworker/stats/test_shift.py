"""Internal − external performance difference: checked against a brute-force loop and known cases."""

import numpy as np
import pytest

from mlworker.stats import binary_metrics, performance_shift, roc_auc


def brute_force_replicates(y, s, *, threshold, n_boot, seed):
    """The documented draw protocol, replicate by replicate: per class, n_units hands with replacement."""
    rng = np.random.default_rng(seed)
    classes = [np.flatnonzero(y == c) for c in (0, 1)]
    draws = [rng.integers(0, idx.size, size=(n_boot, idx.size)) for idx in classes]
    out = {"auc": [], "accuracy": [], "recall": [], "specificity": []}
    for r in range(n_boot):
        chosen = np.concatenate([classes[c][draws[c][r]] for c in (0, 1)])
        metrics = binary_metrics(y[chosen], s[chosen], threshold=threshold)
        out["auc"].append(roc_auc(y[chosen], s[chosen]))
        for name in ("accuracy", "recall", "specificity"):
            out[name].append(metrics[name])
    return {k: np.array(v) for k, v in out.items()}


def sample(rng, n, separation):
    y = np.array([0] * n + [1] * n)
    return y, np.clip(0.5 + separation * (y - 0.5) + rng.normal(0, 0.2, y.size), 0, 1)


def test_matches_a_brute_force_bootstrap_of_each_set_independently():
    rng = np.random.default_rng(4)
    yi, si = sample(rng, 12, 0.6)
    ye, se = sample(rng, 9, 0.2)
    se[3] = se[14]  # a tie across classes
    result = performance_shift(yi, si, ye, se, threshold=0.5, n_boot=300, seed=11)
    internal = brute_force_replicates(yi, si, threshold=0.5, n_boot=300, seed=11)
    external = brute_force_replicates(ye, se, threshold=0.5, n_boot=300, seed=12)
    for name in ("auc", "accuracy", "recall", "specificity"):
        difference = internal[name] - external[name]
        low, high = np.percentile(difference, [2.5, 97.5])
        assert result[name]["low"] == pytest.approx(low) and result[name]["high"] == pytest.approx(high)
        assert result[name]["internal"] == pytest.approx(
            roc_auc(yi, si) if name == "auc" else binary_metrics(yi, si, threshold=0.5)[name])
        assert result[name]["difference"] == pytest.approx(result[name]["internal"] - result[name]["external"])
    assert result["n_internal"] == 24 and result["n_external"] == 18


def test_known_cases_perfect_internal_reversed_external_and_identical_performance():
    y = np.array([0, 0, 0, 1, 1, 1])
    perfect, reversed_ = np.array([0.1, 0.2, 0.3, 0.7, 0.8, 0.9]), np.array([0.9, 0.8, 0.7, 0.3, 0.2, 0.1])
    result = performance_shift(y, perfect, y, reversed_, n_boot=200)
    assert result["auc"]["difference"] == 1 and result["auc"]["low"] == 1 and result["auc"]["high"] == 1
    assert result["accuracy"]["difference"] == 1 and result["specificity"]["internal"] == 1
    same = performance_shift(y, perfect, y, perfect, n_boot=200)
    assert same["auc"]["difference"] == 0 and same["auc"]["low"] == 0 == same["auc"]["high"]


def test_the_interval_covers_zero_when_both_sets_come_from_one_population_and_not_when_they_differ():
    rng = np.random.default_rng(0)
    yi, si = sample(rng, 60, 0.5)
    ye, se = sample(rng, 60, 0.5)
    alike = performance_shift(yi, si, ye, se, n_boot=1000)
    assert alike["auc"]["low"] < 0 < alike["auc"]["high"]
    yw, sw = sample(rng, 60, 0.05)
    shifted = performance_shift(yi, si, yw, sw, n_boot=1000)
    assert shifted["auc"]["low"] > 0.1


def test_refuses_one_class_sets_and_bad_levels():
    y = np.array([0, 1, 0, 1])
    s = np.array([0.2, 0.8, 0.3, 0.6])
    with pytest.raises(ValueError, match="only one class"):
        performance_shift(y, s, np.array([1, 1]), np.array([0.4, 0.6]))
    with pytest.raises(ValueError, match="level"):
        performance_shift(y, s, y, s, level=1.5)
