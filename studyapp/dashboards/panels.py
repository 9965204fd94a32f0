"""The dashboards' panels from the selectors' plain rows: which figure shows what, in which words.

No Django here: the views pass rows (dicts) and plain values, and render what comes back.
"""

from __future__ import annotations

from mlworker.stats.calibration import brier_score, reliability_bins, wilson_interval

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
    if csa.get("bland_altman"):
        panels.append(figures.bland_altman_figure(csa["bland_altman"]))
    return panels


# --- experiment ------------------------------------------------------------------------------------------

Z95 = 1.959963984540054  # the normal quantile of the 95% Wald interval (scipy.stats.norm.ppf(0.975))


def _runs_with(runs: list[dict], key: str) -> list[tuple[int, dict]]:
    return [(i, run) for i, run in enumerate(runs) if run.get(key)]


def training_panels(runs: list[dict], labels: dict[str, str]) -> list[Panel]:
    """Loss (training dashed, validation solid) and validation AUC per epoch, per model."""
    loss, auc = [], []
    for i, run in _runs_with(runs, "history"):
        colour, label = figures.SERIES[i % len(figures.SERIES)], labels.get(run["model_name"], run["model_name"])
        epochs = [h["epoch"] for h in run["history"]]
        loss.append({"label": f"{label} training", "colour": colour, "x": epochs, "dash": "dash",
                     "y": [h.get("train_loss") for h in run["history"]]})
        loss.append({"label": f"{label} validation", "colour": colour, "x": epochs,
                     "y": [h.get("val_loss") for h in run["history"]]})
        auc.append({"label": label, "colour": colour, "x": epochs, "y": [h.get("val_auc") for h in run["history"]]})
    return [figures.line_figure(key="loss", title="Loss per epoch", series=loss, x_title="Epoch",
                                y_title="Cross-entropy loss"),
            figures.line_figure(key="val-auc", title="Validation AUC per epoch", series=auc, x_title="Epoch",
                                y_title="AUC (0–1)", y_range=(0.0, 1.02))]


def _operating_point(level: dict) -> tuple[float, float]:
    metrics = level["metrics"]
    return 1 - metrics["specificity"], metrics["recall"]


def roc_panels(runs: list[dict], labels: dict[str, str], csa_baseline: dict | None, threshold: float) -> list[Panel]:
    """ROC per model at frame and at hand level; at hand level the manual-CSA baseline on the same test hands."""
    panels = []
    for level, title in (("frame", "ROC, frame level"), ("hand", "ROC, hand level (mean of a hand's frames)")):
        curves = []
        for i, run in _runs_with(runs, "evaluation"):
            result = run["evaluation"][level]
            curves.append({"label": labels.get(run["model_name"], run["model_name"]),
                           "colour": figures.SERIES[i % len(figures.SERIES)], "fpr": result["roc"]["fpr"],
                           "tpr": result["roc"]["tpr"], "auc": result["metrics"]["auc"],
                           "ci": result.get("auc_delong_ci"), "point": _operating_point(result),
                           "point_label": f"threshold {threshold:g}"})
        if level == "hand" and csa_baseline and csa_baseline.get("roc"):
            cut = csa_baseline["youden_on_training"]["threshold"]
            curves.append({"label": "manual CSA", "colour": figures.OKABE_ITO["black"], "dash": "dash",
                           "fpr": csa_baseline["roc"]["fpr"], "tpr": csa_baseline["roc"]["tpr"],
                           "auc": csa_baseline["metrics"]["auc"], "ci": csa_baseline.get("auc_delong_ci"),
                           "point": _operating_point(csa_baseline), "point_label": f"CSA ≥ {cut:.1f} mm²"})
        panels.append(figures.roc_figure(key=f"roc-{level}", title=title, curves=curves))
    return panels


def confusion_panels(runs: list[dict], labels: dict[str, str]) -> list[Panel]:
    return [figures.confusion_figure(key=f"confusion-{level}-{run['pk']}",
                                     title=f"{labels.get(run['model_name'], run['model_name'])}, {level} level",
                                     matrix=run["evaluation"][level]["confusion_matrix"], unit=f"{level}s")
            for _i, run in _runs_with(runs, "evaluation") for level in ("frame", "hand")]


def hand_rows(run: dict, hands: dict[int, dict], *, threshold: float, hand_url: str) -> list[dict]:
    """Each test hand of a run: mean probability, its frames' lowest and highest, truth, right or wrong."""
    spread: dict[int, list[float]] = {}
    predictions = run.get("predictions") or {}
    for hand_id, probability in zip(predictions.get("hand_ids", []), predictions.get("probabilities", [])):
        spread.setdefault(hand_id, []).append(probability)
    result = run["evaluation"]["hand"]
    rows = []
    for hand_id, label, mean in zip(result["hand_ids"], result["labels"], result["probabilities"]):
        hand = hands.get(hand_id, {})
        frames = spread.get(hand_id, [mean])
        rows.append({"pk": hand_id, "label": f"{hand.get('study_code', hand_id)} {hand.get('side', '')}".strip(),
                     "mean": mean, "low": min(frames), "high": max(frames), "truth": "cts" if label else "control",
                     "correct": (mean >= threshold) == bool(label), "stage": hand.get("stage"),
                     "url": hand_url.format(pk=hand_id)})
    return rows


def hand_panels(runs: list[dict], hands: dict[int, dict], labels: dict[str, str], *, threshold: float,
                hand_url: str) -> list[Panel]:
    return [figures.hand_probability_figure(
        key=f"hands-{run['pk']}", title=f"{labels.get(run['model_name'], run['model_name'])}: test hands",
        hands=hand_rows(run, hands, threshold=threshold, hand_url=hand_url), threshold=threshold)
        for _i, run in _runs_with(runs, "evaluation")]


STAGE_CATEGORIES = ["control (specificity)", "stage 2", "stage 3", "stage 4", "stage 5"]


def stage_errors(rows: list[dict]) -> list[tuple | None]:
    """Share classified right per truth category: controls (specificity), CTS per EPS stage (sensitivity)."""
    out = []
    for category in STAGE_CATEGORIES:
        if category.startswith("control"):
            chosen = [r for r in rows if r["truth"] == "control"]
        else:
            stage = int(category.split()[-1])
            chosen = [r for r in rows if r["truth"] == "cts" and r["stage"] == stage]
        k, n = sum(r["correct"] for r in chosen), len(chosen)
        out.append((k / n, *wilson_interval(k, n), k, n) if n else None)
    return out


def stage_panel(runs: list[dict], hands: dict[int, dict], labels: dict[str, str], *, threshold: float,
                hand_url: str) -> Panel:
    series = [{"label": labels.get(run["model_name"], run["model_name"]),
               "colour": figures.SERIES[i % len(figures.SERIES)],
               "values": stage_errors(hand_rows(run, hands, threshold=threshold, hand_url=hand_url))}
              for i, run in _runs_with(runs, "evaluation")]
    panel = figures.proportion_figure(key="stages", title="Test hands classified right, by EPS stage",
                                      categories=STAGE_CATEGORIES, series=series,
                                      y_title="Share classified right")
    return Panel(key=panel.key, title=panel.title, figure=panel.figure, table=panel.table,
                 caption="Hand level at the models' threshold, 95% Wilson intervals: sensitivity per EPS stage of the "
                         "CTS hands, specificity for the controls. Which severities the models miss.")


def calibration_panels(runs: list[dict], labels: dict[str, str]) -> tuple[list[Panel], list[dict]]:
    """Reliability diagrams at frame level (10 bins) and hand level (5 bins), and the Brier scores."""
    frame_series, hand_series, scores = [], [], []
    for i, run in _runs_with(runs, "evaluation"):
        colour, label = figures.SERIES[i % len(figures.SERIES)], labels.get(run["model_name"], run["model_name"])
        hand = run["evaluation"]["hand"]
        score = {"model": label, "hand": brier_score(hand["labels"], hand["probabilities"]), "frame": None}
        hand_series.append({"label": f"{label} (Brier {score['hand']:.3f})", "colour": colour,
                            "bins": reliability_bins(hand["labels"], hand["probabilities"], n_bins=5)})
        predictions = run.get("predictions")
        if predictions and predictions.get("probabilities"):
            score["frame"] = brier_score(predictions["labels"], predictions["probabilities"])
            frame_series.append({"label": f"{label} (Brier {score['frame']:.3f})", "colour": colour,
                                 "bins": reliability_bins(predictions["labels"], predictions["probabilities"])})
        scores.append(score)
    return ([figures.reliability_figure(key="calibration-frame", title="Calibration, frame level", series=frame_series),
             figures.reliability_figure(key="calibration-hand", title="Calibration, hand level", series=hand_series)],
            scores)


def delong_rows(comparison: dict | None, labels: dict[str, str]) -> dict:
    """DeLong comparisons with the 95% Wald CI of each AUC difference (difference ± 1.96 SE)."""
    comparison = comparison or {}

    def ci(test: dict) -> dict:
        half = Z95 * test["se"]
        return {**test, "ci_low": test["difference"] - half, "ci_high": test["difference"] + half}

    pairs = [{"a": labels.get(p["model_a"], p["model_a"]), "b": labels.get(p["model_b"], p["model_b"]),
              "frame": ci(p["frame"]), "hand": ci(p["hand"])}
             for p in (comparison.get("delong") or {}).get("pairs", [])]
    csa = comparison.get("csa_baseline") or {}
    versus = [{**ci(d), "model": labels.get(d["model"], d["model"])} for d in csa.get("delong_vs_models", [])]
    return {"pairs": pairs, "csa": csa, "versus_csa": versus, "between_groups": comparison.get("csa_between_groups")}
