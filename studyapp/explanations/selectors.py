"""Reads: explained frames with what the gallery shows, the jobs of an experiment, and the summaries."""

from __future__ import annotations

from django.db.models import QuerySet

from studyapp.experiments.models import Experiment, TrainingRun

from .models import ExplanationJob, FrameExplanation

# Bootstrap replicates of the summaries' CIs (mlworker.explain.summarise_shares resamples hands).
SUMMARY_N_BOOT = 2000
SUMMARY_KEYS = ("model", "method", "frame_outcome", "hand_outcome", "stage", "group")


def frame_explanations() -> QuerySet[FrameExplanation]:
    return FrameExplanation.objects.select_related("job__run", "frame", "hand__participant", "outline_frame")


def experiment_jobs(experiment: Experiment) -> list[dict]:
    """Per run of the experiment: the run and its job per method (None where none was queued)."""
    runs = list(experiment.runs.all())
    jobs = {(job.run_id, job.method): job for job in ExplanationJob.objects.filter(run__in=runs)}
    return [{"run": run, "explainable": run.status == TrainingRun.Status.DONE and bool(run.weights),
             "jobs": [{"method": method, "label": label, "job": jobs.get((run.pk, method))}
                      for method, label in ExplanationJob.Method.choices]} for run in runs]


def summaries(rows: QuerySet[FrameExplanation], *, by: tuple[str, ...] = ("model", "method"),
              n_boot: int = SUMMARY_N_BOOT) -> list[dict]:
    """Attribution shares per group of `by` (SUMMARY_KEYS) with CIs over hands, and each job's sanity verdict.

    Stage and group are the cohort's current values for the hand.
    """
    unknown = set(by) - set(SUMMARY_KEYS)
    if unknown:
        raise ValueError(f"Unknown grouping {sorted(unknown)}; choose from {list(SUMMARY_KEYS)}.")
    # Imported on use: the pure package's __init__ also exposes the methods, which import torch.
    from mlworker.explain import summarise_shares

    values = rows.values("hand_id", "label", "shares", "frame_outcome", "hand_outcome", "job__method",
                         "job__run__model_name", "job__run_id", "hand__stage", "hand__group")
    plain = [{"hand": v["hand_id"], "label": v["label"], "shares": v["shares"], "model": v["job__run__model_name"],
              "method": v["job__method"], "frame_outcome": v["frame_outcome"], "hand_outcome": v["hand_outcome"],
              "stage": v["hand__stage"], "group": v["hand__group"], "run": v["job__run_id"]} for v in values]
    if not plain:
        return []
    result = summarise_shares(plain, by=tuple(by), n_boot=n_boot)
    runs = {(row["model"], row["method"]): row["run"] for row in plain}
    sanity = {(job.run_id, job.method): job.sanity for job in ExplanationJob.objects.filter(
        run_id__in={run for run in runs.values()})}
    for summary in result:
        if "model" in summary and "method" in summary:
            summary["sanity"] = sanity.get((runs.get((summary["model"], summary["method"])), summary["method"]))
        elif "method" in summary:
            verdicts = [s for (run, method), s in sanity.items() if method == summary["method"] and s]
            summary["sanity"] = ({"passed": all(s["passed"] for s in verdicts),
                                  "median": None, "reason": "; ".join(s.get("reason", "") for s in verdicts)}
                                 if verdicts else None)
    return result
