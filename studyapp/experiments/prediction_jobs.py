"""Queueing a prediction for a worker, from the API and the prediction page (light: no torch here)."""

from __future__ import annotations

from studyapp.ops import services as ops_services
from studyapp.ops.models import BackgroundJob

from . import datasets
from .models import TrainingRun
from .services import _invalid

PREDICT_JOB = "predict_clip"
PREDICTION = ops_services.background_job_kind(PREDICT_JOB, "experiments.predict_clip")


def prediction_queue(*, run: TrainingRun, clip, heatmaps: list[str] | tuple = (), requested_by) -> BackgroundJob:
    """Queue a registered model's prediction of a clip; the same request while one is queued or running gets it."""
    if run.status != TrainingRun.Status.DONE or not run.weights:
        raise _invalid("model", "This run has no registered model (it is not done).", "not_registered")
    if not datasets.primary_rois(clip):
        raise _invalid("clip", "The clip has no confirmed ROI to crop; annotate it first.", "no_roi")
    from .tasks import predict_clip

    methods = sorted(set(heatmaps))
    return ops_services.background_job_queue(
        kind=PREDICT_JOB, key=f"run={run.pk}:clip={clip.pk}:heatmaps={','.join(methods)}:user={requested_by.pk}",
        params={"run": run.pk, "clip": clip.pk, "heatmaps": methods}, created_by=requested_by, task=predict_clip)


def prediction_job(*, job_id: int, clip, user) -> BackgroundJob | None:
    """The user's own prediction job of this clip, or None."""
    jobs = BackgroundJob.objects.filter(pk=job_id, kind=PREDICT_JOB, params__clip=clip.pk)
    return (jobs if user.is_superuser else jobs.filter(created_by=user)).first()
