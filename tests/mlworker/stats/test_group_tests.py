import numpy as np
import pytest
from scipy.stats import mannwhitneyu

from mlworker.stats import mann_whitney

X = [12.1, 14.3, 11.8, 15.2, 13.0, 16.4, 12.1, 14.9]  # e.g. CSA (mm^2) of CTS hands
Y = [9.8, 10.4, 12.1, 8.9, 11.0, 10.1, 9.5]  # control hands; 12.1 ties across groups


def test_matches_scipy_and_pairwise_definition():
    r = mann_whitney(X, Y)
    ref = mannwhitneyu(X, Y, alternative="two-sided")
    assert r["u"] == pytest.approx(ref.statistic)
    assert r["p_value"] == pytest.approx(ref.pvalue)
    x, y = np.array(X)[:, None], np.array(Y)[None, :]
    p_greater = ((x > y) + 0.5 * (x == y)).mean()
    assert r["rank_biserial"] == pytest.approx(2 * p_greater - 1)
    assert (r["n_x"], r["n_y"]) == (8, 7)
    assert (r["median_x"], r["median_y"]) == (np.median(X), np.median(Y))


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
