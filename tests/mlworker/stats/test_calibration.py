"""Brier score, reliability bins and the Wilson interval against hand computations and published values."""

import pytest

from mlworker.stats import brier_score, reliability_bins, wilson_interval


def test_brier_score_is_the_mean_squared_error_of_the_probabilities():
    assert brier_score([1, 0, 1, 0], [0.9, 0.2, 0.6, 0.5]) == pytest.approx((0.01 + 0.04 + 0.16 + 0.25) / 4)
    assert brier_score([1, 0], [0.5, 0.5]) == 0.25
    with pytest.raises(ValueError):
        brier_score([1, 0], [0.5])


def test_reliability_bins_average_predictions_and_outcomes_per_bin():
    bins = reliability_bins([0, 0, 1, 1, 1], [0.05, 0.15, 0.12, 0.95, 1.0], n_bins=5)
    assert [(b["low"], b["n"]) for b in bins] == [(0.0, 3), (0.8, 2)]  # 1.0 falls in the last bin
    assert bins[0]["mean_predicted"] == pytest.approx((0.05 + 0.15 + 0.12) / 3)
    assert bins[0]["observed"] == pytest.approx(1 / 3) and bins[1]["observed"] == 1.0


@pytest.mark.parametrize(("y", "p", "message"), [
    ([0, 1, 1], [0.2, float("nan"), 0.9], "finite and within"),
    ([0, 1, 1], [0.2, 1.2, 0.9], "finite and within"),
    ([0, 1, 1], [-0.1, 0.5, 0.9], "finite and within"),
    ([0, 1, 2], [0.2, 0.5, 0.9], "0 or 1"),
    ([0, 1], [0.2, 0.5, 0.9], "equal"),
])
def test_calibration_refuses_probabilities_it_would_otherwise_drop(y, p, message):
    # A NaN or negative probability fell outside every bin: the counts no longer added up to the hands.
    with pytest.raises(ValueError, match=message):
        reliability_bins(y, p, n_bins=5)
    with pytest.raises(ValueError, match=message):
        brier_score(y, p)


def test_reliability_bins_of_no_predictions_are_none():
    assert reliability_bins([], [], n_bins=5) == []
    with pytest.raises(ValueError, match="n_bins"):
        reliability_bins([1], [0.5], n_bins=0)


def test_wilson_interval_matches_published_values():
    # Newcombe (1998), Statistics in Medicine 17:857, table I: 81/263 → 0.2553–0.3662; 15/148 → 0.0624–0.1605.
    assert wilson_interval(81, 263) == pytest.approx((0.2553, 0.3662), abs=5e-5)
    assert wilson_interval(15, 148) == pytest.approx((0.0624, 0.1605), abs=5e-5)
    low, high = wilson_interval(0, 10)
    assert low == 0.0 and high == pytest.approx(0.2775, abs=5e-5)  # 0/10 (Newcombe: 0–0.2775)
    assert wilson_interval(0, 0) is None
