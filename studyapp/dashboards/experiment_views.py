"""The experiment dashboard: the panels of an experiment's page, built from what its runs' evaluations stored.

experiments.views.experiment_detail renders them (the page is the PI's); the study report reuses the same
builders, so the page and the report show the same numbers. Model names are passed in as labels: this
module does not import the model code (torch).
"""

from __future__ import annotations

from django.urls import reverse

from studyapp.experiments.models import Experiment, TrainingRun

from . import experiment_figures as ef
from . import experiment_selectors
from .experiment_external import external_domain_figure, external_domain_rows, external_figure, external_rows
from .experiment_services import run_summarise
from .figures import DataTable, Panel

METRICS = ["auc", "accuracy", "precision", "recall", "specificity", "f1"]


def run_label(run: TrainingRun, labels: dict) -> str:
    return labels.get(run.model_name, run.model_name) + (" (random init)" if run.random_init else "")


def colours(runs: list[TrainingRun]) -> dict[int, str]:
    """A model's colour follows its place among the experiment's runs, the same on every figure."""
    return {run.pk: ef.model_colour(i) for i, run in enumerate(runs)}


def training_panels(runs: list[TrainingRun], labels: dict) -> list[Panel]:
    """Loss and validation metrics per epoch of the runs that have finished an epoch (live while training)."""
    colour = colours(runs)
    series = [{"label": run_label(run, labels), "colour": colour[run.pk], "history": run.history}
              for run in runs if run.history]
    return ef.training_curves(series) if series else []


def attribution_panel(summaries: list[dict], labels: dict) -> Panel | None:
    """The share of attribution in nerve and ring per model and method, where the experiment was explained.

    `summaries`: experiment_selectors.explanation_summaries (the gallery's and the report's numbers).
    """
    from studyapp.explanations.models import METHOD_LABELS

    return ef.attribution_figure(summaries, labels, METHOD_LABELS) if summaries else None


def _ensure_summaries(runs: list[TrainingRun]) -> None:
    """Runs evaluated before the dashboard existed get their summary once (then it is read like the others)."""
    for run in runs:
        evaluation = run.evaluation or {}
        if run.status == TrainingRun.Status.DONE and "frame" in evaluation and "dashboard" not in evaluation:
            summary = run_summarise(run_id=run.pk)
            if summary is not None:
                run.evaluation = {**evaluation, "dashboard": summary}


def hand_url(hand: dict, run: TrainingRun) -> str:
    """Where a hand of the per-hand view leads: its clip's prediction page with this model, else the hand page."""
    if hand.get("clip") and run.weights:
        return reverse("experiments:clip-predict", args=[hand["clip"]]) + f"?model={run.pk}"
    return reverse("cohort:hand-detail", args=[hand["pk"]])


def results(experiment: Experiment, runs: list[TrainingRun], labels: dict) -> dict:
    """Every panel and table of the results, from the evaluated runs and the experiment's comparison."""
    _ensure_summaries(runs)
    data = experiment_selectors.experiment_dashboard_data(experiment, runs)
    colour = colours(runs)
    evaluated = data["evaluated"]
    hands = data["hands"]
    models = [{"run": run, "label": run_label(run, labels), "colour": colour[run.pk], "evaluation": run.evaluation}
              for run in evaluated]
    comparison = experiment.comparison or {}
    baseline = comparison.get("csa_baseline") if (comparison.get("csa_baseline") or {}).get("roc") else None
    panels: dict = {"roc": [], "confusion": [], "per_hand": [], "calibration": [], "stage": None, "differences": None,
                    "external": None, "external_domains": None}
    for level in ("frame", "hand"):
        with_level = [m for m in models if (m["evaluation"].get(level) or {}).get("roc")]
        if with_level:
            panels["roc"].append(ef.roc_figure(
                level=level, models=[{"label": m["label"], "colour": m["colour"], "result": m["evaluation"][level]}
                                     for m in with_level], baseline=baseline if level == "hand" else None))
    wrong = []
    for m in models:
        evaluation = m["evaluation"]
        frame, hand = evaluation.get("frame") or {}, evaluation.get("hand") or {}
        threshold = evaluation.get("threshold", 0.5)
        if frame.get("confusion_matrix") or hand.get("confusion_matrix"):
            panels["confusion"].append(ef.confusion_figure(
                key=f"confusion-{m['run'].model_name}", label=m["label"], frame=frame.get("confusion_matrix"),
                hand=hand.get("confusion_matrix"), threshold=threshold))
        summary = evaluation.get("dashboard")
        if not summary:
            continue
        rows = []
        for row in summary["hands"]:
            info = hands.get(row["hand"], {"pk": row["hand"], "study_code": f"hand {row['hand']}", "side": "",
                                           "clip": None})
            name = f"{info['study_code']} {info['side']}".strip()
            rows.append({**row, "name": name, "url": hand_url(info, m["run"])})
        panels["per_hand"].append(ef.per_hand_figure(key=f"hands-{m['run'].model_name}", label=m["label"],
                                                     hands=rows, threshold=threshold))
        for row in rows:
            if (row["mean"] >= threshold) != bool(row["label"]):
                wrong.append({"model": m["label"], **row, "called": "CTS" if row["mean"] >= threshold else "control"})
    summarised = [m for m in models if m["evaluation"].get("dashboard")]
    if summarised:
        panels["stage"] = ef.stage_figure([{"label": m["label"], "colour": m["colour"],
                                            "by_stage": m["evaluation"]["dashboard"]["by_stage"]} for m in summarised])
        for level in ("frame", "hand"):
            panels["calibration"].append(ef.calibration_figure(level=level, models=[
                {"label": m["label"], "colour": m["colour"],
                 "calibration": m["evaluation"]["dashboard"]["calibration"][level]} for m in summarised]))
    difference_rows = auc_difference_rows(comparison, labels)
    if difference_rows:
        panels["differences"] = ef.auc_difference_figure(difference_rows)
    shift_rows = external_rows(models, domain=experiment.split.domain)
    if shift_rows:
        panels["external"] = external_figure(shift_rows)
        domain_rows = external_domain_rows(models)
        if domain_rows:
            panels["external_domains"] = external_domain_figure(domain_rows)
    return {"panels": panels, "models": models, "wrong_hands": wrong, "metrics": METRICS, "external_rows": shift_rows,
            "metrics_table": metrics_table(models), "stages_note": _stages_note(summarised)}


def auc_difference_rows(comparison: dict, labels: dict) -> list[tuple[str, float, float, float]]:
    """(what, difference, low, high) of every paired AUC test that has an interval: models, then model vs CSA."""
    rows = []
    for pair in (comparison.get("delong") or {}).get("pairs", []):
        a, b = labels.get(pair["model_a"], pair["model_a"]), labels.get(pair["model_b"], pair["model_b"])
        for level, words in (("frame", "frames, clustered"), ("hand", "hands")):
            test = pair.get(level) or {}
            if test.get("difference_ci"):
                rows.append((f"{a} − {b} ({words})", test["difference"], *test["difference_ci"]))
    for test in (comparison.get("csa_baseline") or {}).get("delong_vs_models", []):
        if test.get("difference_ci"):
            rows.append((f"{labels.get(test['model'], test['model'])} − manual CSA (hands)", test["difference"],
                         *test["difference_ci"]))
    return rows


def metrics_table(models: list[dict]) -> DataTable:
    """The results table as CSV: each metric with its labelled intervals, per model and level."""
    rows = []
    for m in models:
        evaluation = m["evaluation"]
        for level, intervals in (("frame", ("resampling_frames", "resampling_hands_cluster")),
                                 ("hand", ("resampling_hands",))):
            result = evaluation.get(level) or {}
            if not result.get("metrics"):
                continue
            for metric in METRICS:
                row = [m["label"], level, result.get("n"), metric, _round(result["metrics"].get(metric))]
                for kind in ("resampling_frames", "resampling_hands_cluster", "resampling_hands"):
                    ci = ((result.get("ci") or {}).get(kind) or {}).get(metric) if kind in intervals else None
                    row += [_round(ci["low"]), _round(ci["high"])] if ci else [None, None]
                if metric == "auc":
                    row += [*(_round(v) for v in result.get("auc_delong_ci") or [None, None]),
                            result.get("auc_ci_method")]
                else:
                    row += [None, None, None]
                rows.append(row)
    return DataTable(["model", "level", "n", "metric", "estimate",
                      "CI low (bootstrap, frames resampled)", "CI high (bootstrap, frames resampled)",
                      "CI low (bootstrap, hands resampled, frame level)",
                      "CI high (bootstrap, hands resampled, frame level)",
                      "CI low (bootstrap over hands, hand level)", "CI high (bootstrap over hands, hand level)",
                      "AUC CI low (analytic)", "AUC CI high (analytic)", "analytic AUC CI method"], rows)


def _round(value, digits: int = 4):
    return None if value is None else round(float(value), digits)


def _stages_note(summarised: list[dict]) -> str:
    late = [m["label"] for m in summarised
            if m["evaluation"]["dashboard"].get("stages_recorded") != "at evaluation"]
    if not late:
        return ""
    return (f"{', '.join(late)}: evaluated before stages were stored with the results; their stages are those "
            "the cohort recorded when the dashboard first showed them.")
