"""The experiment dashboard's panels from the runs' stored results: which figure shows what, in which words.

No Django here: the view passes the runs' rows and the test hands' stages, and renders what comes back.
"""

from __future__ import annotations

from mlworker.stats.calibration import brier_score, reliability_bins, wilson_interval

from . import figures, result_figures
from .figures import Panel


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
    return [result_figures.line_figure(key="loss", title="Loss per epoch", series=loss, x_title="Epoch",
                                       y_title="Cross-entropy loss"),
            result_figures.line_figure(key="val-auc", title="Validation AUC per epoch", series=auc,
                                       x_title="Epoch", y_title="AUC (0–1)", y_range=(0.0, 1.02))]


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
        panels.append(result_figures.roc_figure(key=f"roc-{level}", title=title, curves=curves))
    return panels


def confusion_panels(runs: list[dict], labels: dict[str, str]) -> list[Panel]:
    return [result_figures.confusion_figure(
        key=f"confusion-{level}-{run['pk']}", unit=f"{level}s",
        title=f"{labels.get(run['model_name'], run['model_name'])}, {level} level",
        matrix=run["evaluation"][level]["confusion_matrix"])
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
    return [result_figures.hand_probability_figure(
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
    panel = result_figures.proportion_figure(key="stages", title="Test hands classified right, by EPS stage",
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
    return ([result_figures.reliability_figure(key="calibration-frame", title="Calibration, frame level",
                                               series=frame_series),
             result_figures.reliability_figure(key="calibration-hand", title="Calibration, hand level",
                                               series=hand_series)],
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
