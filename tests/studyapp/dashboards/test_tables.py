"""Table 1 against hand computations and scipy's tests."""

import math

import numpy as np
import pytest
from scipy import stats

from studyapp.dashboards import tables
from studyapp.dashboards.tables import HandRecord

NORMAL_CONTROL = [30.0, 32.0, 35.0, 36.0, 38.0, 40.0, 41.0, 44.0]
NORMAL_CTS = [50.0, 53.0, 55.0, 57.0, 58.0, 60.0, 63.0, 66.0]


def test_a_normal_variable_is_mean_sd_with_welchs_t_and_the_pooled_smd():
    row = tables.continuous_row("Age (years)", {"control": NORMAL_CONTROL, "cts": NORMAL_CTS})
    mean_c, sd_c = sum(NORMAL_CONTROL) / 8, np.std(NORMAL_CONTROL, ddof=1)
    mean_t, sd_t = sum(NORMAL_CTS) / 8, np.std(NORMAL_CTS, ddof=1)
    assert row["summary"] == "mean ± SD" and row["test"] == "Welch t-test"
    assert row["cells"]["control"]["text"] == f"{mean_c:.1f} ± {sd_c:.1f}" == "37.0 ± 4.7"  # SS 154 over 7: SD 4.69
    assert row["p"] == pytest.approx(stats.ttest_ind(NORMAL_CONTROL, NORMAL_CTS, equal_var=False).pvalue)
    assert row["smd"] == pytest.approx((mean_t - mean_c) / math.sqrt((sd_c ** 2 + sd_t ** 2) / 2))
    assert row["imbalanced"]


def test_a_skewed_variable_is_median_iqr_with_mann_whitney():
    control = [1.0, 1.2, 1.2, 1.3, 1.3, 1.4, 9.0, 15.0]
    cts = [2.0, 2.1, 2.2, 2.5, 2.6, 3.0, 20.0, 31.0]
    row = tables.continuous_row("DML (ms)", {"control": control, "cts": cts}, digits=2)
    assert row["summary"] == "median [IQR]" and row["test"] == "Mann–Whitney U"
    q1, median, q3 = np.percentile(control, [25, 50, 75])
    # Linear interpolation at positions 1.75, 3.5 and 5.25 of the sorted values.
    assert row["cells"]["control"]["text"] == f"{median:.2f} [{q1:.2f}–{q3:.2f}]" == "1.30 [1.20–3.30]"
    assert row["p"] == pytest.approx(stats.mannwhitneyu(control, cts, alternative="two-sided").pvalue)


def test_a_small_two_by_two_table_uses_fishers_exact_test_and_the_binary_smd():
    row = tables.categorical_row("Sex", {"control": ["female"] * 2 + ["male"] * 6,
                                         "cts": ["female"] * 7 + ["male"] * 1}, ("female", "male"))
    assert row["test"] == "Fisher's exact"
    assert row["p"] == pytest.approx(stats.fisher_exact([[2, 6], [7, 1]]).pvalue)
    p_c, p_t = 6 / 8, 1 / 8  # the second level's share: the SMD is symmetric in the level chosen
    assert row["smd"] == pytest.approx(abs(p_t - p_c) / math.sqrt((p_c * (1 - p_c) + p_t * (1 - p_t)) / 2))
    assert [level["cells"]["control"]["text"] for level in row["levels"]] == ["2 (25%)", "6 (75%)"]


def test_a_larger_table_uses_chi_square_and_the_multilevel_smd():
    control = ["a"] * 20 + ["b"] * 30 + ["c"] * 50
    cts = ["a"] * 40 + ["b"] * 35 + ["c"] * 25
    row = tables.categorical_row("Level", {"control": control, "cts": cts}, ("a", "b", "c"))
    assert row["test"] == "chi-square"
    assert row["p"] == pytest.approx(stats.chi2_contingency([[20, 30, 50], [40, 35, 25]]).pvalue)
    # Yang & Dalton by hand on levels b and c: S = average of the two multinomial covariances.
    pc, pt = np.array([0.30, 0.50]), np.array([0.35, 0.25])
    s = ((np.diag(pc) - np.outer(pc, pc)) + (np.diag(pt) - np.outer(pt, pt))) / 2
    d = pt - pc
    det = s[0, 0] * s[1, 1] - s[0, 1] * s[1, 0]
    inverse = np.array([[s[1, 1], -s[0, 1]], [-s[1, 0], s[0, 0]]]) / det
    assert row["smd"] == pytest.approx(math.sqrt(d @ inverse @ d))


def _records(control_ages, cts_ages):
    return ([HandRecord(group="control", age=a, sex="female", side="left", stage=1, dml_ms=3.5, sncv_m_s=50.0,
                        csa_mm2=9.0 + i % 3) for i, a in enumerate(control_ages)]
            + [HandRecord(group="cts", age=a, sex="female", side="right", stage=2 + i % 4, dml_ms=5.5, sncv_m_s=35.0,
                          csa_mm2=None if i == 0 else 12.0 + i % 3) for i, a in enumerate(cts_ages)]
            + [HandRecord(group="needs_review", age=70, sex="male", side="left", stage=None)])


def test_table_one_flags_an_age_difference_and_counts_missing_values():
    table = tables.table_one(_records([int(a) for a in NORMAL_CONTROL], [int(a) for a in NORMAL_CTS]))
    assert table["n"] == {"control": 8, "cts": 8}  # the hand to review is not in Table 1
    assert "differ in age" in table["age_note"] and "37 years in controls, 58 in CTS" in table["age_note"]
    csa = next(row for row in table["rows"] if row["label"].startswith("CSA"))
    assert csa["missing"] == {"control": 0, "cts": 1}
    stage = next(row for row in table["rows"] if row["label"] == "EPS stage")
    assert stage["test"] is None and stage["smd"] is None and "defines the groups" in stage["note"]
    assert [level["cells"]["cts"]["n"] for level in stage["levels"]] == [0, 0, 2, 2, 2, 2]


def test_no_age_note_when_the_groups_match_in_age():
    table = tables.table_one(_records([40, 50, 60, 45, 55], [41, 49, 61, 44, 56]))
    assert abs(table["rows"][0]["smd"]) <= tables.SMD_THRESHOLD and table["age_note"] == ""


def test_age_bands_count_hands_and_take_the_median_csa():
    rows = {row["band"]: row for row in tables.age_band_breakdown(_records([25, 39, 40], [40, 41, 75]))}
    assert rows["18–39"]["control"] == {"hands": 2, "csa_n": 2, "csa_median": 9.5}
    assert rows["40–49"]["cts"] == {"hands": 2, "csa_n": 1, "csa_median": 13.0}  # the first CTS hand has no CSA
    assert rows["70+"]["cts"]["hands"] == 1 and rows["50–59"]["control"]["hands"] == 0
