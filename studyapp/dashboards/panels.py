"""The dashboards' panels from the selectors' plain rows: which figure shows what, in which words.

No Django here: the views pass rows (dicts) and plain values, and render what comes back.
"""

from __future__ import annotations

from . import figures, tables
from .figures import GROUP_COLOURS, GROUP_LABELS, STAGE_COLOURS, DataTable, Panel


def hand_records(hands: list[dict]) -> list[tables.HandRecord]:
    """Table 1's records: the included hands of either group."""
    return [tables.HandRecord(group=h["group"], age=h["age"], sex=h["sex"], side=h["side"], stage=h["stage"],
                              dml_ms=h["dml_ms"], sncv_m_s=h["sncv_m_s"], csa_mm2=h["csa_mm2"])
            for h in hands if not h["exclusion_reason"] and h["group"] in tables.GROUPS]


def _threshold_label(threshold: dict | None) -> tuple[float | None, str]:
    if not threshold:
        return None, ""
    return threshold["threshold"], (f"training Youden cut-off {threshold['threshold']:.1f} mm² "
                                    f"({threshold['experiment']})")


def csa_by_group(records: list[tables.HandRecord], threshold: dict | None, *, method_label: str) -> Panel:
    cut, label = _threshold_label(threshold)
    groups = [(GROUP_LABELS[g], GROUP_COLOURS[g],
               [r.csa_mm2 for r in records if r.group == g and r.csa_mm2 is not None]) for g in tables.GROUPS]
    return figures.box_strip_figure(key="csa-group", title=f"CSA by group ({method_label})", groups=groups,
                                    y_title="CSA (mm²)", threshold=cut, threshold_label=label)


def csa_by_stage(records: list[tables.HandRecord], threshold: dict | None, *, method_label: str) -> Panel:
    cut, label = _threshold_label(threshold)
    groups = []
    for level in tables.STAGE_LEVELS:
        values = [r.csa_mm2 for r in records if tables.stage_level(r) == level and r.csa_mm2 is not None]
        if values:
            groups.append((tables.STAGE_LABELS[level], STAGE_COLOURS[level], values))
    return figures.box_strip_figure(key="csa-stage", title=f"CSA by EPS stage ({method_label})", groups=groups,
                                    y_title="CSA (mm²)", x_title="EPS stage", threshold=cut, threshold_label=label)


def enrollment(hands: list[dict]) -> Panel:
    series = []
    for group in ("control", "cts", "needs_review", "excluded"):
        dates = sorted(h["enrolled_on"].isoformat() for h in hands if h["group"] == group)
        if dates:
            series.append((GROUP_LABELS[group], GROUP_COLOURS[group], dates))
    return figures.cumulative_figure(key="enrollment", title="Enrollment over time (hands)", series=series,
                                     y_title="Hands enrolled (cumulative)", x_title="Enrollment date")


def age_bands(records: list[tables.HandRecord]) -> tuple[Panel, list[dict]]:
    rows = tables.age_band_breakdown(records)
    bands = [row["band"] for row in rows]
    panel = figures.grouped_bar_figure(
        key="age-bands", title="Hands per age band", categories=bands, x_title="Age band (years)",
        y_title="Hands", series=[(GROUP_LABELS[g], GROUP_COLOURS[g], [row[g]["hands"] for row in rows])
                                 for g in tables.GROUPS])
    table = DataTable(["age band (years)", "control hands", "control median CSA (mm²)", "CTS hands",
                       "CTS median CSA (mm²)"],
                      [[row["band"], row["control"]["hands"], _round(row["control"]["csa_median"]),
                        row["cts"]["hands"], _round(row["cts"]["csa_median"])] for row in rows])
    caption = "When the groups differ in age, compare them within a band."
    return Panel(key=panel.key, title=panel.title, figure=panel.figure, table=table, caption=caption), rows


def _round(value: float | None, digits: int = 1):
    return None if value is None else round(value, digits)


def review_list(hands: list[dict], *, dml_ms: float, sncv_m_s: float) -> list[dict]:
    """Included hands a person must look at: not stageable as entered, or staged with other thresholds."""
    out = []
    for hand in hands:
        if hand["exclusion_reason"]:
            continue
        reasons = []
        if hand["group"] == "needs_review":
            reasons.append(hand["staging_reason"] or "Not staged.")
        staged = (hand["staged_dml_threshold_ms"], hand["staged_sncv_threshold_m_s"])
        if staged != (dml_ms, sncv_m_s):
            reasons.append("Never staged." if staged[0] is None else
                           f"Staged with DML {staged[0]:g} ms / SNCV {staged[1]:g} m/s; the settings say "
                           f"{dml_ms:g} ms / {sncv_m_s:g} m/s: restage.")
        if reasons:
            out.append({"pk": hand["pk"], "study_code": hand["study_code"], "side": hand["side"],
                        "group": hand["group"], "reasons": reasons})
    return out


def clip_progress(clips: list[dict]) -> tuple[Panel, list[dict]]:
    """Frames confirmed per extracted clip, and the clips still waiting for a full set of ROIs."""
    extracted = [c for c in clips if c["extraction_status"] == "done"]
    labels = [f"clip {c['pk']} · {c['study_code']} {c['side']}" for c in extracted]
    confirmed = [c["confirmed"] for c in extracted]
    remaining = [max(c["frames"] - c["confirmed"], 0) for c in extracted]
    panel = figures.grouped_bar_figure(
        key="clip-progress", title="Frames with a confirmed ROI per clip", categories=labels,
        series=[("confirmed", figures.OKABE_ITO["bluish_green"], confirmed),
                ("not yet", figures.OKABE_ITO["orange"], remaining)],
        x_title="Clip", y_title="Frames", stacked=True, horizontal=True)
    waiting = [c for c in clips if not c["excluded"] and (c["extraction_status"] != "done"
                                                          or c["confirmed"] < c["frames"] or not c["frames"])]
    return panel, waiting


def annotator_progress(rows: list[dict]) -> Panel:
    names = [row["annotator"] for row in rows]
    return figures.grouped_bar_figure(
        key="annotator-progress", title="Work per annotator", categories=names, x_title="Annotator",
        y_title="Count", series=[("frames confirmed", figures.OKABE_ITO["blue"], [r["frames"] for r in rows]),
                                 ("clips", figures.OKABE_ITO["sky_blue"], [r["clips"] for r in rows]),
                                 ("outlines", figures.OKABE_ITO["reddish_purple"], [r["outlines"] for r in rows])])


def agreement_panels(roi: dict, csa: dict) -> list[Panel]:
    """Mean IoU per clip, the ICC with its CI, and the Bland–Altman plot, where there is data for them."""
    panels = []
    if roi["per_clip"]:
        panels.append(figures.grouped_bar_figure(
            key="iou-clip", title="ROI overlap per clip (mean IoU)",
            categories=[f"clip {r['clip']}" for r in roi["per_clip"]],
            series=[("mean IoU", figures.OKABE_ITO["blue"], [round(r["mean_iou"], 4) for r in roi["per_clip"]]),
                    ("lowest IoU", figures.OKABE_ITO["orange"], [round(r["min_iou"], 4) for r in roi["per_clip"]])],
            x_title="Clip", y_title="IoU (0–1)", horizontal=True))
    if csa.get("icc"):
        icc = csa["icc"]
        panels.append(figures.interval_figure(
            key="icc", title="CSA agreement: ICC(2,1), 95% CI",
            rows=[("ICC(2,1)", icc["icc"], icc["ci_low"], icc["ci_high"])],
            x_title=f"ICC ({icc['n']} hands × {icc['k']} raters)", x_range=(min(0.0, icc["ci_low"]), 1.0)))
    panels += bland_altman_panels(csa)
    return panels


def bland_altman_panels(csa: dict) -> list[Panel]:
    """One Bland–Altman figure per pair of raters (the first keeps the key 'bland-altman')."""
    pairs = csa.get("bland_altman_pairs") or ([csa["bland_altman"]] if csa.get("bland_altman") else [])
    return [figures.bland_altman_figure(pair, key="bland-altman" if i == 0 else f"bland-altman-{i + 1}")
            for i, pair in enumerate(pairs)]

