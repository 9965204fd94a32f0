"""Writes behind the experiment dashboard: the dashboard summary of a run evaluated before it existed."""

from __future__ import annotations

from studyapp.experiments.models import TrainingRun

from .experiment_selectors import hand_stages
from .experiment_summary import evaluation_summary


def run_summarise(*, run_id: int) -> dict | None:
    """Store the dashboard summary of a done run that lacks one, from its stored predictions.

    Runs evaluated since the dashboard exist carry it from evaluation; for older ones the stages are those
    of now, and the summary says so. None when the run has no predictions to summarise.
    """
    run = TrainingRun.objects.filter(pk=run_id, status=TrainingRun.Status.DONE).first()
    if run is None or not run.predictions or not run.evaluation:
        return None
    p = run.predictions
    summary = evaluation_summary(p["labels"], p["probabilities"], p["hand_ids"], stages=hand_stages(p["hand_ids"]),
                                 threshold=run.evaluation.get("threshold", 0.5))
    summary["stages_recorded"] = "after evaluation (the run predates the dashboard)"
    TrainingRun.objects.filter(pk=run_id).update(evaluation={**run.evaluation, "dashboard": summary})
    return summary
