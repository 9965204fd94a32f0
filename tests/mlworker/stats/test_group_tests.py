import numpy as np
import pytest
from scipy.stats import mannwhitneyu

from mlworker.stats import mann_whitney

X = [12.1, 14.3, 11.8, 15.2, 13.0, 16.4, 12.1, 14.9]  # e.g. CSA (mm^2) of CTS hands
Y = [9.8, 10.4, 12.1, 8.9, 11.0, 10.1, 9.5]  # control hands; 12.1 ties across groups


def test_matches_scipy_and_pairwise_definition():
    r = mann_whitney(X, Y)
    ref = mannwhitneyu(X, Y, alternative="two-sided", method="asymptotic", use_continuity=True)
    assert r["u"] == pytest.approx(ref.statistic)
    assert r["p_value"] == pytest.approx(ref.pvalue)
    x, y = np.array(X)[:, None], np.array(Y)[None, :]
    p_greater = ((x > y) + 0.5 * (x == y)).mean()
    assert r["rank_biserial"] == pytest.approx(2 * p_greater - 1)
    assert (r["n_x"], r["n_y"]) == (8, 7)
    assert (r["median_x"], r["median_y"]) == (np.median(X), np.median(Y))
    assert r["method"].startswith("asymptotic")  # 12.1 is tied across the groups


def test_convention_is_exact_without_ties_in_small_samples_as_r_does():
    x, y = [12.2, 14.3, 11.8, 15.2, 13.0], [9.8, 10.4, 12.1, 8.9, 11.0, 10.1]
    r = mann_whitney(x, y)
    assert r["method"] == "exact"
    assert r["p_value"] == pytest.approx(mannwhitneyu(x, y, method="exact").pvalue)
    big = np.arange(60.0)
    assert mann_whitney(big, big + 0.5)["method"].startswith("asymptotic")  # 60 values: normal approximation


def test_hodges_lehmann_shift_and_interval():
    x, y = np.array(X), np.array(Y)
    r = mann_whitney(x, y)
    assert r["hodges_lehmann_shift"] == pytest.approx(np.median(np.subtract.outer(x, y)))
    low, high = r["hodges_lehmann_ci"]
    assert low < r["hodges_lehmann_shift"] < high
    # A pure shift of 3 is recovered, and the 95% interval covers the true shift about 95% of the time.
    rng = np.random.default_rng(5)
    covered = 0
    for _ in range(400):
        a, b = rng.normal(3, 1, 25), rng.normal(0, 1, 30)
        lo, hi = mann_whitney(a, b)["hodges_lehmann_ci"]
        covered += lo <= 3 <= hi
    assert 0.92 <= covered / 400 <= 0.98

def test_swapping_groups_mirrors_statistics():
    a, b = mann_whitney(X, Y), mann_whitney(Y, X)
    assert a["u"] + b["u"] == pytest.approx(len(X) * len(Y))
    assert b["rank_biserial"] == pytest.approx(-a["rank_biserial"])
    assert b["p_value"] == pytest.approx(a["p_value"])


@pytest.mark.parametrize(
    "x, y, message",
    [([], [1.0], "x is empty"), ([1.0], [np.nan], "y contains NaN"), ([[1.0]], [1.0], "1-D")],
)
def test_bad_input_refused(x, y, message):
    with pytest.raises(ValueError, match=message):
        mann_whitney(x, y)


def test_csa_between_groups_reports_the_shift_as_cts_minus_control():
    from mlworker.stats import csa_between_groups

    r = csa_between_groups(Y, X)  # control, CTS
    assert r["shift_cts_minus_control"] == pytest.approx(np.median(np.subtract.outer(X, Y)))
    low, high = r["shift_cts_minus_control_ci"]
    assert 0 < low < r["shift_cts_minus_control"] < high
