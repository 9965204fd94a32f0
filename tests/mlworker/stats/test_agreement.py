import math

import numpy as np
import pytest
from scipy import stats

from mlworker.stats import bland_altman, box_iou, icc_2_1, mean_pairwise_iou

# Shrout & Fleiss (1979), Table 2: 6 targets rated by 4 judges.
SHROUT_FLEISS = [[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]]


def test_icc_2_1_shrout_fleiss_published_values():
    r = icc_2_1(SHROUT_FLEISS)
    assert round(r["icc"], 2) == 0.29  # their Table 4, ICC(2,1)
    # Their ANOVA table: BMS 11.24, JMS 32.49, EMS 1.02.
    assert (round(r["ms_subjects"], 2), round(r["ms_raters"], 2), round(r["ms_error"], 2)) == (
        11.24,
        32.49,
        1.02,
    )
    assert (r["df1"], r["df2"], r["n"], r["k"]) == (5, 15, 6, 4)
    assert r["f_value"] == pytest.approx(11.24 / 1.02, rel=2e-3)
    assert r["p_value"] == pytest.approx(stats.f.sf(r["f_value"], 5, 15))
    # CI as reported by established packages (e.g. R psych::ICC, pingouin): [0.02, 0.76].
    assert (round(r["ci_low"], 2), round(r["ci_high"], 2)) == (0.02, 0.76)


def test_icc_2_1_against_long_form_anova():
    rng = np.random.default_rng(2)
    truth = rng.normal(10, 3, 25)
    x = truth[:, None] + np.array([0.0, 0.8, -0.4]) + rng.normal(0, 1, (25, 3))
    n, k = x.shape
    # Sums of squares written out per cell, independently of the vectorised implementation.
    g = x.mean()
    ssr = sum(k * (x[i].mean() - g) ** 2 for i in range(n))
    ssc = sum(n * (x[:, j].mean() - g) ** 2 for j in range(k))
    sse = sum(
        (x[i, j] - x[i].mean() - x[:, j].mean() + g) ** 2 for i in range(n) for j in range(k)
    )
    msr, msc, mse = ssr / (n - 1), ssc / (k - 1), sse / ((n - 1) * (k - 1))
    expected = (msr - mse) / (msr + (k - 1) * mse + k * (msc - mse) / n)
    r = icc_2_1(x)
    assert r["icc"] == pytest.approx(expected)
    assert r["ci_low"] < r["icc"] < r["ci_high"]
    # Population ICC(A,1) = 9 / (9 + var(offsets, ddof=1) + 1) = 0.868 lies inside the 95% CI.
    assert r["ci_low"] < 9 / (9 + np.var([0.0, 0.8, -0.4], ddof=1) + 1) < r["ci_high"]


def test_icc_missing_values_refused_or_dropped():
    x = np.array(SHROUT_FLEISS + [[5, np.nan, 4, 6]], dtype=float)
    with pytest.raises(ValueError, match="missing ratings"):
        icc_2_1(x)
    assert icc_2_1(x, drop_incomplete=True) == icc_2_1(SHROUT_FLEISS)
    with pytest.raises(ValueError, match="at least 2 subjects and 2 raters"):
        icc_2_1([[1.0, 2.0]])


def test_bland_altman_against_numpy():
    a = np.array([10.2, 11.5, 9.8, 13.1, 12.0, 10.9, 14.2, 9.5])
    b = np.array([9.9, 11.9, 9.1, 12.4, 12.3, 10.1, 13.5, 9.6])
    r = bland_altman(a, b)
    d = a - b
    assert r["bias"] == pytest.approx(np.mean(d))
    assert r["sd"] == pytest.approx(np.std(d, ddof=1))
    assert r["loa_low"] == pytest.approx(np.mean(d) - 1.96 * np.std(d, ddof=1))
    assert r["loa_high"] == pytest.approx(np.mean(d) + 1.96 * np.std(d, ddof=1))
    lo, hi = stats.t.interval(0.95, len(d) - 1, loc=np.mean(d), scale=stats.sem(d))
    assert (r["bias_ci_low"], r["bias_ci_high"]) == pytest.approx((lo, hi))
    # Limits' CIs: Bland & Altman (1999) SE of a limit = sqrt(3 s^2 / n), with Student t.
    se_limit = np.sqrt(3 * np.var(d, ddof=1) / len(d))
    t = stats.t.ppf(0.975, len(d) - 1)
    assert r["loa_low_ci"] == pytest.approx([r["loa_low"] - t * se_limit, r["loa_low"] + t * se_limit])
    assert r["loa_high_ci"] == pytest.approx([r["loa_high"] - t * se_limit, r["loa_high"] + t * se_limit])
    np.testing.assert_allclose(r["means"], (a + b) / 2)
    np.testing.assert_allclose(r["differences"], d)
    assert r["n"] == 8
    with pytest.raises(ValueError, match="length mismatch"):
        bland_altman(a, b[:-1])
    with pytest.raises(ValueError, match="NaN"):
        bland_altman([1.0, np.nan], [1.0, 2.0])


def test_box_iou_hand_cases():
    assert box_iou((0, 0, 2, 2), (0, 0, 2, 2)) == 1.0
    assert box_iou((0, 0, 2, 2), (1, 0, 2, 2)) == pytest.approx(2 / 6)
    assert box_iou((0, 0, 2, 2), (2, 0, 2, 2)) == 0.0  # touching edges share no area
    assert box_iou({"x": 1, "y": 1, "w": 2, "h": 2}, (0, 0, 2, 2)) == pytest.approx(1 / 7)
    assert math.isnan(box_iou((1, 1, 0, 0), (1, 1, 0, 0)))
    with pytest.raises(ValueError, match="negative width"):
        box_iou((0, 0, -1, 2), (0, 0, 1, 1))
    with pytest.raises(ValueError, match="keys x, y, w, h"):
        box_iou({"x": 0, "y": 0, "w": 1}, (0, 0, 1, 1))


def test_mean_pairwise_iou():
    boxes = {"r1": (0, 0, 2, 2), "r2": (1, 0, 2, 2), "r3": (0, 0, 2, 2)}
    # Pairs: r1-r2 = 1/3, r1-r3 = 1, r2-r3 = 1/3.
    assert mean_pairwise_iou(boxes) == pytest.approx((1 / 3 + 1 + 1 / 3) / 3)
    with pytest.raises(ValueError, match="at least 2 raters"):
        mean_pairwise_iou({"r1": (0, 0, 1, 1)})


@pytest.mark.parametrize("k", [2, 3, 4])
def test_icc_identical_raters_is_one(k):
    truth = np.array([7.1, 9.4, 12.0, 8.3, 15.2, 10.9])
    r = icc_2_1(np.tile(truth[:, None], (1, k)))
    assert r["icc"] == 1.0 and (r["ci_low"], r["ci_high"]) == (1.0, 1.0)
    assert r["f_value"] == np.inf and r["p_value"] == 0.0


def test_icc_constant_offsets_give_the_defined_value_and_its_limit():
    truth = np.array([7.1, 9.4, 12.0, 8.3, 15.2, 10.9, 6.6, 11.7])
    offsets = np.array([0.0, 0.8, 1.5])
    x = truth[:, None] + offsets[None, :]
    n, k = x.shape
    msr = k * truth.var(ddof=1)
    msc = n * offsets.var(ddof=1)
    expected = msr / (msr + k * msc / n)  # ICC(A,1) with no residual error
    r = icc_2_1(x)
    assert r["icc"] == pytest.approx(expected, rel=1e-12)
    assert r["ci_low"] < r["icc"] < r["ci_high"] <= 1.0
    # The value is the limit of data with vanishing residual noise (continuity, no special-case jump).
    noisy = x + np.random.default_rng(0).normal(0, 1e-6, x.shape)
    assert icc_2_1(noisy)["icc"] == pytest.approx(expected, rel=1e-6)


def test_icc_subjects_rated_alike_is_refused_clearly():
    with pytest.raises(ValueError, match="do not vary"):
        icc_2_1(np.full((5, 3), 9.0))


def test_box_iou_many_equals_box_iou_row_by_row():
    import numpy as np

    from mlworker.stats import box_iou, box_iou_many

    rng = np.random.default_rng(3)
    a = np.column_stack([rng.integers(0, 50, 200), rng.integers(0, 50, 200), rng.integers(1, 40, 200),
                         rng.integers(1, 40, 200)])
    b = np.column_stack([rng.integers(0, 50, 200), rng.integers(0, 50, 200), rng.integers(1, 40, 200),
                         rng.integers(1, 40, 200)])
    many = box_iou_many(a, b)
    assert many.tolist() == [box_iou(x, y) for x, y in zip(a.tolist(), b.tolist())]
    assert np.isnan(box_iou_many([[0, 0, 0, 0]], [[5, 5, 0, 0]])[0])
    with pytest.raises(ValueError):
        box_iou_many([[0, 0, -1, 2]], [[0, 0, 1, 1]])
