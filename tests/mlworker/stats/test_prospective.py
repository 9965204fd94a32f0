"""Prospective statistics against independent references: hand counts, Wilson and DeLong from mlworker.stats,
scikit-learn's logistic regression, closed forms of a saturated fit, scipy's t interval, a brute-force sample
size search and Buderer's (1996) Wald figure."""

import datetime as dt
import json
import math

import numpy as np
import pytest
from scipy.optimize import brentq
from scipy.special import expit, logit
from scipy.stats import norm
from scipy.stats import t as student_t
from sklearn.linear_model import LogisticRegression

from mlworker.stats import delong_ci, evaluate_predictions, roc_auc, wilson_interval
from mlworker.stats.prospective import (
    MIN_RECALIBRATION_CASES,
    accrual_curve,
    cases_needed,
    logistic_recalibration,
    prospective_summary,
    retrospective_vs_prospective,
)

# Ten hands: five CTS, five controls; at 0.5, tp 4, fn 1, tn 3, fp 2.
Y = [1, 1, 1, 1, 1, 0, 0, 0, 0, 0]
P = [0.95, 0.81, 0.66, 0.52, 0.31, 0.72, 0.55, 0.40, 0.12, 0.05]


def _strict_json(value):
    return json.loads(json.dumps(value, allow_nan=False))


def _data(n=400, seed=3, shift=1.0):
    rng = np.random.default_rng(seed)
    p = expit(rng.normal(-0.3, 1.4, n))
    y = (rng.random(n) < expit(shift * logit(p))).astype(int)  # shift 1: perfectly calibrated
    return y, p


def test_proportions_are_the_hand_counts_with_wilson_intervals():
    s = prospective_summary(Y, P, threshold=0.5)
    assert (s["n"], s["n_pos"], s["n_neg"]) == (10, 5, 5)
    assert s["counts"] == {"tp": 4, "fn": 1, "tn": 3, "fp": 2}
    for name, (hits, n) in {"sensitivity": (4, 5), "specificity": (3, 5), "accuracy": (7, 10), "ppv": (4, 6),
                            "npv": (3, 4)}.items():
        low, high = wilson_interval(hits, n)
        assert s[name] == {"estimate": hits / n, "successes": hits, "n": n, "low": low, "high": high}, name
    assert s["brier"] == pytest.approx(np.mean((np.array(P) - np.array(Y)) ** 2))
    assert s["auc"]["estimate"] == pytest.approx(roc_auc(Y, P))
    assert [s["auc"]["low"], s["auc"]["high"]] == pytest.approx(list(delong_ci(Y, P)))
    # 90% intervals are narrower, and say so.
    narrow = prospective_summary(Y, P, threshold=0.5, level=0.9)
    assert narrow["level"] == 0.9 and narrow["sensitivity"]["low"] > s["sensitivity"]["low"]


def test_undefined_numbers_are_none_and_the_summary_is_strict_json():
    # Nothing called CTS: PPV has no denominator.
    s = prospective_summary(Y, P, threshold=0.99)
    assert s["ppv"] is None and s["npv"]["n"] == 10
    assert _strict_json(s) == s
    # One class: no sensitivity, no AUC, no slope; Brier and the rest still there.
    s = prospective_summary([0] * 12, [0.1, 0.7, 1.0] * 4, threshold=0.5)
    assert s["sensitivity"] is None and s["auc"] is None and s["specificity"]["n"] == 12
    assert s["recalibration"]["slope"] is None and "one class" in s["recalibration"]["undefined"]
    assert s["calibration_in_the_large"]["estimate"] == pytest.approx(0.6)
    assert _strict_json(s) == s
    # One hand: no interval of the mean difference; probabilities of exactly 0 and 1 are fine.
    s = prospective_summary([1], [1.0], threshold=0.5)
    assert s["calibration_in_the_large"]["low"] is None and s["sensitivity"]["estimate"] == 1.0
    assert _strict_json(s) == s
    # One CTS hand: the AUC exists, its interval does not (DeLong needs two of each).
    s = prospective_summary([1, 0, 0, 0], [0.9, 0.2, 0.3, 0.95], threshold=0.5)
    assert s["auc"]["estimate"] == pytest.approx(2 / 3) and s["auc"]["low"] is None and s["auc"]["undefined"]
    assert _strict_json(s) == s


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="probabilities"):
        prospective_summary([0, 1], [0.2, 1.2], threshold=0.5)
    with pytest.raises(ValueError, match="NaN"):
        prospective_summary([0, 1], [0.2, math.nan], threshold=0.5)
    with pytest.raises(ValueError, match="0 and 1"):
        prospective_summary([0, 2], [0.2, 0.3], threshold=0.5)
    with pytest.raises(ValueError, match="level"):
        prospective_summary(Y, P, threshold=0.5, level=95)


def test_recalibration_matches_scikit_learn_maximum_likelihood():
    y, p = _data(shift=0.6)  # over-confident predictions: slope below 1
    fit = logistic_recalibration(y, p)
    reference = LogisticRegression(C=np.inf, tol=1e-12, max_iter=10_000).fit(logit(p)[:, None], y)
    assert fit["slope"]["estimate"] == pytest.approx(reference.coef_[0, 0], abs=1e-6)
    assert fit["intercept"]["estimate"] == pytest.approx(reference.intercept_[0], abs=1e-6)
    assert fit["slope"]["high"] < 1  # the miscalibration is found
    # The intercept with the slope fixed at 1 solves its score equation sum(y - expit(a + logit p)) = 0.
    a = brentq(lambda a: np.sum(y - expit(a + logit(p))), -10, 10, xtol=1e-14)
    assert fit["intercept_slope_1"]["estimate"] == pytest.approx(a, abs=1e-8)


def test_recalibration_of_a_calibrated_model_finds_slope_1_and_intercept_0():
    y, p = _data(n=4000, seed=11)
    fit = logistic_recalibration(y, p)
    for key, truth in (("slope", 1.0), ("intercept", 0.0), ("intercept_slope_1", 0.0)):
        assert fit[key]["low"] < truth < fit[key]["high"], key


def test_saturated_recalibration_has_closed_form_estimates_and_standard_errors():
    # Two prediction values: the fit reproduces each group's observed share exactly.
    x = np.array([0.2] * 40 + [0.7] * 60)
    y = np.array([1] * 10 + [0] * 30 + [1] * 45 + [0] * 15)  # observed 0.25 and 0.75
    fit = logistic_recalibration(y, x)
    slope = (logit(0.75) - logit(0.25)) / (logit(0.7) - logit(0.2))
    assert fit["slope"]["estimate"] == pytest.approx(slope, abs=1e-9)
    assert fit["intercept"]["estimate"] == pytest.approx(logit(0.25) - slope * logit(0.2), abs=1e-9)
    # Var(logit of a share) = 1 / (n p (1 - p)) per group; the slope is their difference over the spacing.
    var = 1 / (40 * 0.25 * 0.75) + 1 / (60 * 0.75 * 0.25)
    assert fit["slope"]["se"] == pytest.approx(math.sqrt(var) / (logit(0.7) - logit(0.2)), rel=1e-7)
    z = norm.ppf(0.975)
    assert fit["slope"]["high"] - fit["slope"]["low"] == pytest.approx(2 * z * fit["slope"]["se"])


def test_recalibration_is_none_when_too_few_or_separated():
    y, p = _data(n=MIN_RECALIBRATION_CASES - 1)
    assert logistic_recalibration(y, p)["slope"] is None
    assert "fewer than" in logistic_recalibration(y, p)["undefined"]
    # Every CTS hand above every control (quasi-separation: touching at 0.5 too) has no finite slope.
    separated = logistic_recalibration([0] * 6 + [1] * 6, [0.1, 0.2, 0.3, 0.4, 0.45, 0.5] + [0.5, 0.6, 0.7, 0.8,
                                                                                             0.9, 0.99])
    assert separated["slope"] is None and "separate" in separated["undefined"]
    assert separated["intercept_slope_1"]["estimate"] is not None  # the mean calibration still exists
    assert logistic_recalibration([0, 1] * 6, [0.4] * 12)["slope"] is None  # constant predictions


def test_calibration_in_the_large_is_the_mean_difference_with_a_t_interval():
    y, p = _data(n=50, seed=5)
    citl = prospective_summary(y, p, threshold=0.5)["calibration_in_the_large"]
    d = p - y
    assert citl["estimate"] == pytest.approx(p.mean() - y.mean())
    low, high = student_t.interval(0.95, d.size - 1, loc=d.mean(), scale=d.std(ddof=1) / math.sqrt(d.size))
    assert (citl["low"], citl["high"]) == pytest.approx((low, high))
    # A model predicting 0.8 for every hand of a 50% sample over-predicts: positive difference.
    over = prospective_summary([0, 1] * 10, [0.8] * 20, threshold=0.5)["calibration_in_the_large"]
    assert over["estimate"] == pytest.approx(0.3) and over["low"] > 0


def test_calibration_bins_carry_counts_and_wilson_intervals():
    s = prospective_summary(Y, P, threshold=0.5)
    assert sum(b["n"] for b in s["calibration_bins"]) == 10
    top = s["calibration_bins"][-1]  # 0.95 alone in [0.9, 1]
    assert (top["low"], top["n"], top["observed"]) == (0.9, 1, 1.0)
    assert top["observed_ci"] == pytest.approx(list(wilson_interval(1, 1)))


def test_clusters_of_one_hand_change_nothing():
    y, p = _data(n=120, seed=7)
    plain = prospective_summary(y, p, threshold=0.5)
    clustered = prospective_summary(y, p, threshold=0.5, clusters=np.arange(120) * 7)
    for name in ("sensitivity", "specificity", "accuracy", "ppv", "npv"):
        assert (clustered[name]["low"], clustered[name]["high"]) == pytest.approx((plain[name]["low"],
                                                                                  plain[name]["high"])), name
        assert clustered[name]["design_effect"] == pytest.approx(1.0)
    assert (clustered["auc"]["low"], clustered["auc"]["high"]) == pytest.approx((plain["auc"]["low"],
                                                                                plain["auc"]["high"]))
    assert clustered["auc"]["method"].startswith("Obuchowski") and clustered["n_clusters"] == 120
    plain_citl, clustered_citl = plain["calibration_in_the_large"], clustered["calibration_in_the_large"]
    assert (clustered_citl["low"], clustered_citl["high"]) == pytest.approx((plain_citl["low"], plain_citl["high"]))


def test_two_identical_hands_per_participant_count_as_one():
    # Copying every participant's hand leaves the clustered intervals those of the single hands.
    y, p = _data(n=80, seed=9)
    single = prospective_summary(y, p, threshold=0.5)
    naive = prospective_summary(np.repeat(y, 2), np.repeat(p, 2), threshold=0.5)
    paired = prospective_summary(np.repeat(y, 2), np.repeat(p, 2), threshold=0.5, clusters=np.repeat(np.arange(80), 2))
    for name in ("sensitivity", "specificity", "accuracy"):
        assert paired[name]["n"] == 2 * single[name]["n"]
        assert (paired[name]["low"], paired[name]["high"]) == pytest.approx((single[name]["low"],
                                                                            single[name]["high"])), name
        assert paired[name]["design_effect"] == pytest.approx(2.0)
        assert naive[name]["high"] - naive[name]["low"] < single[name]["high"] - single[name]["low"]
    assert (paired["auc"]["low"], paired["auc"]["high"]) == pytest.approx((single["auc"]["low"],
                                                                          single["auc"]["high"]))
    p_citl, s_citl = paired["calibration_in_the_large"], single["calibration_in_the_large"]
    assert (p_citl["low"], p_citl["high"]) == pytest.approx((s_citl["low"], s_citl["high"]))


def test_a_participant_may_bring_one_cts_and_one_control_hand():
    y, p = _data(n=60, seed=2)
    participants = np.arange(60) // 2  # pairs, many with one hand of each class
    assert any(y[2 * i] != y[2 * i + 1] for i in range(30))
    s = prospective_summary(y, p, threshold=0.5, clusters=participants)
    assert s["n_clusters"] == 30 and s["auc"]["low"] < s["auc"]["estimate"] < s["auc"]["high"]
    assert _strict_json(s) == s


def _brute_force_cases(share, width, level=0.95):
    n = 1
    while True:
        low, high = wilson_interval(share * n, n, level)
        if high - low <= width:
            return n
        n += 1


def test_cases_needed_is_the_first_n_whose_wilson_interval_is_narrow_enough():
    for sens, spec, width in ((0.9, 0.8, 0.1), (0.5, 0.97, 0.2), (0.99, 0.6, 0.05), (1.0, 0.0, 0.3)):
        result = cases_needed(target_width=width, sensitivity=sens, specificity=spec, prevalence=0.3)
        assert result["positives"] == _brute_force_cases(sens, width), (sens, width)
        assert result["negatives"] == _brute_force_cases(spec, width), (spec, width)
        assert result["total"] == max(math.ceil(result["positives"] / 0.3), math.ceil(result["negatives"] / 0.7))
    assert cases_needed(target_width=0.2, sensitivity=0.8, specificity=0.8, prevalence=0.5,
                        level=0.9)["positives"] == _brute_force_cases(0.8, 0.2, 0.9)


def test_buderer_wald_figure_and_the_wilson_figure():
    # Buderer (1996): sensitivity 0.9 to within ±0.05 needs z² p(1-p) / 0.05² = 138.3 → 139 CTS hands (Wald).
    wald = math.ceil(norm.ppf(0.975) ** 2 * 0.9 * 0.1 / 0.05 ** 2)
    assert wald == 139
    result = cases_needed(target_width=0.1, sensitivity=0.9, specificity=0.9, prevalence=0.5, metric="sensitivity")
    # The Wilson interval around 0.9 is skewed and slightly wider: 141 CTS hands, 282 hands at 50% prevalence.
    assert (result["positives"], result["negatives"], result["total"]) == (141, None, 282)
    assert cases_needed(target_width=0.1, sensitivity=0.9, specificity=0.9, prevalence=0.2,
                        metric="sensitivity")["total"] == 705


def test_cases_needed_for_specificity_alone_and_what_remains():
    result = cases_needed(target_width=0.1, sensitivity=0.9, specificity=0.9, prevalence=0.25, n_now=100,
                          metric="specificity")
    assert result["positives"] is None and result["negatives"] == 141
    assert result["total"] == 188 and result["remaining"] == 88  # 141 / 0.75 = 188
    both = cases_needed(target_width=0.1, sensitivity=0.9, specificity=0.9, prevalence=0.25, n_now=1000)
    assert both["total"] == 564 and both["remaining"] == 0  # 141 / 0.25; the positives decide
    for bad in ({"target_width": 0}, {"prevalence": 1.0}, {"sensitivity": 1.5}, {"metric": "auc"},
                {"n_now": -1}):
        with pytest.raises(ValueError):
            cases_needed(**{"target_width": 0.1, "sensitivity": 0.9, "specificity": 0.9, "prevalence": 0.5,
                            **bad})


def test_accrual_curve_follows_time_order_and_ends_at_the_summary():
    times = [dt.datetime(2026, 3, d, tzinfo=dt.timezone.utc) for d in (5, 1, 9, 2, 7, 3, 8, 4, 10, 6)]
    curve = accrual_curve(Y, P, times, threshold=0.5)
    assert [row["n"] for row in curve] == list(range(1, 11))
    assert [row["time"][:10] for row in curve] == [f"2026-03-{d:02d}" for d in range(1, 11)]
    # Time order: days 1, 2, 3 are hands 2 (CTS, 0.81), 4 (CTS, 0.52), 6 (control, 0.72).
    assert curve[0]["specificity"] is None and curve[0]["auc"] is None
    assert curve[1]["sensitivity"]["successes"] == 2 and curve[1]["auc"] is None
    assert curve[2]["specificity"]["successes"] == 0 and curve[2]["auc"]["estimate"] == pytest.approx(0.5)
    final = prospective_summary(Y, P, threshold=0.5)
    for key in ("sensitivity", "specificity"):
        assert curve[-1][key] == {k: final[key][k] for k in ("estimate", "successes", "n", "low", "high")}
    assert {**curve[-1]["auc"], "low": None, "high": None} == {**final["auc"], "low": None, "high": None}
    assert (curve[-1]["auc"]["low"], curve[-1]["auc"]["high"]) == pytest.approx(
        (final["auc"]["low"], final["auc"]["high"]), abs=1e-12)  # summed hand by hand: the last digits may differ
    assert _strict_json(curve) == curve
    with pytest.raises(ValueError, match="times"):
        accrual_curve(Y, P, times[:3], threshold=0.5)


@pytest.mark.parametrize("seed", [0, 1])
def test_every_accrual_row_is_the_summary_of_the_hands_scored_so_far(seed):
    """The curve is updated hand by hand; each row must still be what prospective_summary (DeLong through
    midranks) says of that prefix, ties between scores and the rows before both classes included."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 90)
    p = np.round(expit(rng.normal(-0.4 + 1.2 * y, 1.0)), 1)  # rounded: many ties, also across classes
    times = rng.permutation(90)
    curve = accrual_curve(y, p, times, threshold=0.5)
    order = np.argsort(times, kind="stable")
    for k, row in enumerate(curve, start=1):
        prefix = order[:k]
        summary = prospective_summary(y[prefix], p[prefix], threshold=0.5)
        assert (row["n_pos"], row["n_neg"]) == (summary["n_pos"], summary["n_neg"])
        for key in ("sensitivity", "specificity"):
            expected = summary[key] and {k: summary[key][k] for k in ("estimate", "successes", "n", "low", "high")}
            assert row[key] == expected
        if summary["auc"] is None or summary["auc"]["low"] is None:
            assert row["auc"] == summary["auc"]
        else:
            assert row["auc"]["method"] == "DeLong" and row["auc"]["estimate"] == summary["auc"]["estimate"]
            assert (row["auc"]["low"], row["auc"]["high"]) == pytest.approx(
                (summary["auc"]["low"], summary["auc"]["high"]), abs=1e-12)


def test_accrual_ties_keep_the_input_order():
    curve = accrual_curve([1, 0, 1], [0.9, 0.1, 0.2], [2, 1, 2], threshold=0.5)
    assert [(r["n_pos"], r["n_neg"]) for r in curve] == [(0, 1), (1, 1), (2, 1)]
    assert curve[1]["sensitivity"]["successes"] == 1 and curve[2]["sensitivity"]["successes"] == 1


def test_retrospective_evaluation_beside_the_prospective_summary():
    retro_eval = evaluate_predictions(Y, P, list(range(10)), n_boot=200)["hand"]
    y, p = _data(n=40, seed=4)
    prospective = prospective_summary(y, p, threshold=0.5)
    rows = {row["metric"]: row for row in retrospective_vs_prospective(retro_eval, prospective)}
    assert rows["sensitivity"]["retrospective"]["estimate"] == pytest.approx(0.8)
    assert rows["sensitivity"]["retrospective"]["low"] == retro_eval["ci"]["resampling_hands"]["recall"]["low"]
    assert rows["npv"]["retrospective"]["estimate"] == pytest.approx(0.75)
    assert rows["auc"]["retrospective"]["low"] == retro_eval["auc_delong_ci"][0]
    assert rows["brier"]["retrospective"]["estimate"] == pytest.approx(np.mean((np.array(P) - Y) ** 2))
    assert rows["specificity"]["change"] == pytest.approx(prospective["specificity"]["estimate"] - 0.6)
    assert rows["n"]["retrospective"]["estimate"] == 10 and rows["n"]["prospective"]["estimate"] == 40
    # Two summaries of the same shape compare directly; a metric missing on one side has no change.
    same = retrospective_vs_prospective(prospective, {**prospective, "auc": None})
    assert all(r["change"] in (0, None) for r in same)
    assert next(r for r in same if r["metric"] == "auc")["change"] is None
    assert _strict_json(same) == same


def test_the_design_effect_never_narrows_the_interval():
    # Each participant has two CTS hands, one found and one missed: no spread between participants, so the
    # estimated design effect is 0; the interval stays the plain Wilson one instead of shrinking to a point.
    s = prospective_summary([1] * 40, [0.9, 0.1] * 20, threshold=0.5, clusters=np.repeat(np.arange(20), 2))
    assert s["sensitivity"]["design_effect"] == 1.0
    assert (s["sensitivity"]["low"], s["sensitivity"]["high"]) == pytest.approx(wilson_interval(20, 40))


def test_cases_needed_total_is_not_raised_by_round_off():
    # 141 controls at 20% controls: 141 / (1 - 0.8) is 705.0000000000001 in floating point.
    assert cases_needed(target_width=0.1, sensitivity=0.9, specificity=0.9, prevalence=0.8,
                        metric="specificity")["total"] == 705


def test_participant_clustered_standard_errors_match_a_participant_bootstrap():
    # 150 participants, both hands scored; a participant effect raises both hands' risk and both scores, and
    # a third of the participants bring one CTS and one control hand. Resampling whole participants is the
    # reference; the independent-hands intervals are too narrow for specificity.
    rng = np.random.default_rng(1)
    participants = 150
    effect = rng.normal(0, 1.5, participants)[:, None]
    cts = (rng.random((participants, 2)) < expit(-0.5 + 0.8 * effect)).astype(int)
    score = expit(1.2 * cts + 0.9 * effect + rng.normal(0, 0.8, (participants, 2)))
    assert (cts[:, 0] != cts[:, 1]).sum() > 40
    y, p = cts.ravel(), score.ravel()
    plain = prospective_summary(y, p, threshold=0.5)
    clustered = prospective_summary(y, p, threshold=0.5, clusters=np.repeat(np.arange(participants), 2))
    replicates = {"auc": [], "specificity": [], "accuracy": [], "citl": []}
    for _ in range(2000):
        drawn = rng.integers(0, participants, participants)
        yy, pp = cts[drawn].ravel(), score[drawn].ravel()
        called = pp >= 0.5
        replicates["auc"].append(roc_auc(yy, pp))
        replicates["specificity"].append((~called[yy == 0]).mean())
        replicates["accuracy"].append((called == (yy == 1)).mean())
        replicates["citl"].append((pp - yy).mean())
    z = norm.ppf(0.975)

    def se(result):
        return (result["high"] - result["low"]) / (2 * z)

    for name in ("auc", "specificity", "accuracy"):
        assert se(clustered[name]) == pytest.approx(np.std(replicates[name]), rel=0.1), name
    assert se(plain["specificity"]) < 0.9 * np.std(replicates["specificity"])
    assert clustered["calibration_in_the_large"]["se"] == pytest.approx(np.std(replicates["citl"]), rel=0.1)
