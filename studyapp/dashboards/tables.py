"""Table 1 (the cohort by group) and the age-band breakdown: plain records in, numbers and texts out.

No Django here. The unit is the hand (a participant with two included hands counts twice), as in the
study's analysis. Continuous rows are mean ± SD with Welch's t-test when both groups look normal
(Shapiro–Wilk p ≥ 0.05 with at least three values each), otherwise median [IQR] with Mann–Whitney U.
Categorical rows are n (%) with chi-square, or Fisher's exact test for a 2×2 table with an expected
count under 5. Every row carries the standardised mean difference (SMD, CTS minus control; for a
categorical row the multi-level SMD of Yang & Dalton 2012, as the `tableone` package does); |SMD| above
`SMD_THRESHOLD` (0.1, Austin 2009) flags an imbalance.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

SMD_THRESHOLD = 0.1
NORMALITY_ALPHA = 0.05
GROUPS = ("control", "cts")
AGE_BANDS = ((18, 39, "18–39"), (40, 49, "40–49"), (50, 59, "50–59"), (60, 69, "60–69"), (70, 200, "70+"))
STAGE_LEVELS = ("no_eps", "1", "2", "3", "4", "5")
STAGE_LABELS = {"no_eps": "no EPS (volunteer)", **{str(s): f"stage {s}" for s in range(1, 6)}}


@dataclass(frozen=True)
class HandRecord:
    """What Table 1 needs of one included hand; None where it was not measured."""

    group: str
    age: int | None
    sex: str
    side: str
    stage: int | None
    dml_ms: float | None = None
    sncv_m_s: float | None = None
    csa_mm2: float | None = None


def smd_continuous(a: Sequence[float], b: Sequence[float]) -> float | None:
    """(mean b − mean a) / sqrt((var a + var b) / 2), sample variances; None without two values each."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if len(a) < 2 or len(b) < 2:
        return None
    pooled = math.sqrt((a.var(ddof=1) + b.var(ddof=1)) / 2)
    difference = float(b.mean() - a.mean())
    if pooled == 0:
        return 0.0 if difference == 0 else None
    return difference / pooled


def smd_categorical(counts_a: Sequence[int], counts_b: Sequence[int]) -> float | None:
    """Yang & Dalton's SMD over k levels: sqrt(d' S⁻¹ d) on the proportions of levels 2..k.

    For two levels it is |p_b − p_a| / sqrt((p_a(1−p_a) + p_b(1−p_b)) / 2).
    """
    a, b = np.asarray(counts_a, float), np.asarray(counts_b, float)
    if a.sum() == 0 or b.sum() == 0 or len(a) < 2:
        return None
    p_a, p_b = (a / a.sum())[1:], (b / b.sum())[1:]

    def covariance(p):
        return np.diag(p) - np.outer(p, p)

    s = (covariance(p_a) + covariance(p_b)) / 2
    d = p_b - p_a
    if not d.any():
        return 0.0
    value = float(d @ np.linalg.pinv(s) @ d)
    return math.sqrt(max(value, 0.0))


def _normal(values: np.ndarray) -> bool:
    return len(values) >= 3 and np.ptp(values) > 0 and stats.shapiro(values).pvalue >= NORMALITY_ALPHA


def continuous_row(label: str, by_group: dict[str, list[float]], *, digits: int = 1) -> dict:
    """Summary per group, the test that fits, p and SMD of one continuous variable."""
    arrays = {g: np.asarray(by_group.get(g, []), float) for g in GROUPS}
    normal = all(_normal(v) for v in arrays.values())
    cells = {}
    for group, values in arrays.items():
        if not len(values):
            cells[group] = {"n": 0, "text": "—"}
        elif normal:
            mean, sd = float(values.mean()), float(values.std(ddof=1))
            cells[group] = {"n": len(values), "mean": mean, "sd": sd, "text": f"{mean:.{digits}f} ± {sd:.{digits}f}"}
        else:
            q1, median, q3 = (float(q) for q in np.percentile(values, [25, 50, 75]))
            cells[group] = {"n": len(values), "median": median, "q1": q1, "q3": q3,
                            "text": f"{median:.{digits}f} [{q1:.{digits}f}–{q3:.{digits}f}]"}
    a, b = arrays["control"], arrays["cts"]
    test, p = None, None
    if normal:
        test, p = "Welch t-test", float(stats.ttest_ind(a, b, equal_var=False).pvalue)
    elif len(a) and len(b):
        test, p = "Mann–Whitney U", float(stats.mannwhitneyu(a, b, alternative="two-sided").pvalue)
    smd = smd_continuous(a, b)
    return {"label": label, "kind": "continuous", "summary": "mean ± SD" if normal else "median [IQR]",
            "cells": cells, "test": test, "p": _finite(p), "smd": smd, "imbalanced": _imbalanced(smd), "levels": []}


def categorical_row(label: str, by_group: dict[str, list[str]], levels: Sequence[str], *,
                    level_labels: dict[str, str] | None = None, test: bool = True, note: str = "") -> dict:
    """n (%) of each level per group, chi-square or Fisher, and the multi-level SMD."""
    counts = {g: [list(by_group.get(g, [])).count(level) for level in levels] for g in GROUPS}
    totals = {g: sum(counts[g]) for g in GROUPS}
    rows = []
    for i, level in enumerate(levels):
        cells = {g: {"n": counts[g][i], "percent": 100 * counts[g][i] / totals[g] if totals[g] else None,
                     "text": f"{counts[g][i]} ({100 * counts[g][i] / totals[g]:.0f}%)" if totals[g] else "0"}
                 for g in GROUPS}
        rows.append({"level": (level_labels or {}).get(level, level), "cells": cells})
    name, p = None, None
    used = [i for i in range(len(levels)) if counts["control"][i] + counts["cts"][i] > 0]
    table = np.array([[counts[g][i] for i in used] for g in GROUPS])
    if test and len(used) >= 2 and all(totals.values()):
        expected = stats.contingency.expected_freq(table)
        if table.shape == (2, 2) and (expected < 5).any():
            name, p = "Fisher's exact", float(stats.fisher_exact(table).pvalue)
        else:
            name, p = "chi-square", float(stats.chi2_contingency(table).pvalue)
            if (expected < 5).any():
                note = note or "Some expected counts are under 5: read the chi-square p-value with care."
    smd = smd_categorical([counts["control"][i] for i in used], [counts["cts"][i] for i in used]) if test else None
    return {"label": label, "kind": "categorical", "summary": "n (%)", "cells": {g: {"n": totals[g]} for g in GROUPS},
            "test": name, "p": _finite(p), "smd": smd, "imbalanced": _imbalanced(smd), "levels": rows, "note": note}


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _imbalanced(smd: float | None) -> bool:
    return smd is not None and abs(smd) > SMD_THRESHOLD


def _split(records: Sequence[HandRecord], attribute: str) -> dict[str, list]:
    return {g: [getattr(r, attribute) for r in records if r.group == g and getattr(r, attribute) is not None]
            for g in GROUPS}


def stage_level(record: HandRecord) -> str:
    return "no_eps" if record.stage is None else str(record.stage)


def table_one(records: Sequence[HandRecord]) -> dict:
    """Table 1 of the included, staged hands by group, with the age note when the groups differ in age."""
    records = [r for r in records if r.group in GROUPS]
    n = {g: sum(r.group == g for r in records) for g in GROUPS}
    stages = {g: [stage_level(r) for r in records if r.group == g] for g in GROUPS}
    rows = [
        continuous_row("Age (years)", _split(records, "age")),
        categorical_row("Sex", _split(records, "sex"), ("female", "male", "other")),
        categorical_row("Side", _split(records, "side"), ("left", "right")),
        continuous_row("DML (ms)", _split(records, "dml_ms"), digits=2),
        continuous_row("SNCV (m/s)", _split(records, "sncv_m_s")),
        continuous_row("CSA (mm²)", _split(records, "csa_mm2")),
        categorical_row("EPS stage", stages, STAGE_LEVELS, level_labels=STAGE_LABELS, test=False,
                        note="The stage defines the groups, so it is not tested between them."),
    ]
    for row in rows:
        row["missing"] = {g: n[g] - row["cells"][g]["n"] for g in GROUPS}
    age = rows[0]
    age_note = ""
    if age["imbalanced"]:
        centre = "mean" if "mean" in age["cells"]["control"] else "median"
        age_note = (f"The groups differ in age ({centre} {age['cells']['control'][centre]:.0f} years in controls, "
                    f"{age['cells']['cts'][centre]:.0f} in CTS; SMD {age['smd']:+.2f}): age is a confounder a model "
                    "can learn instead of the disease. Compare results within age bands.")
    return {"n": n, "rows": rows, "age_note": age_note, "smd_threshold": SMD_THRESHOLD}


def age_band(age: int | None) -> str | None:
    if age is None:
        return None
    return next(label for low, high, label in AGE_BANDS if low <= age <= high)


def age_band_breakdown(records: Sequence[HandRecord]) -> list[dict]:
    """Per age band and group: hands, and their median CSA (mm²) where measured."""
    rows = []
    for _low, _high, label in AGE_BANDS:
        row = {"band": label}
        for group in GROUPS:
            hands = [r for r in records if r.group == group and age_band(r.age) == label]
            csa = [r.csa_mm2 for r in hands if r.csa_mm2 is not None]
            row[group] = {"hands": len(hands), "csa_n": len(csa),
                          "csa_median": float(np.median(csa)) if csa else None}
        rows.append(row)
    return rows


def table_one_csv_rows(table: dict) -> list[list]:
    """Table 1 flattened for the CSV download: one line per row or level."""
    out = []
    for row in table["rows"]:
        p = "" if row["p"] is None else f"{row['p']:.4g}"
        smd = "" if row["smd"] is None else f"{row['smd']:.3f}"
        if row["kind"] == "continuous":
            out.append([row["label"], row["summary"], row["cells"]["control"]["text"], row["cells"]["cts"]["text"],
                        row["test"] or "", p, smd])
        else:
            out.append([row["label"], row["summary"], "", "", row["test"] or "", p, smd])
            out += [[f"  {level['level']}", "n (%)", level["cells"]["control"]["text"], level["cells"]["cts"]["text"],
                     "", "", ""] for level in row["levels"]]
    return out
