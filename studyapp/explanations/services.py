"""Writes of the web process: queue, re-queue and cancel explanation jobs; the job's claim and end states.

Nothing here imports torch at module import: the worker's part (models, maps) is in `explaining.py`.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from studyapp.common.jobs import JobKind, Lease, cancel_requested, lease_claim, queue_on_commit, requeue_running
from studyapp.experiments.models import TrainingRun

from .models import ExplanationJob, FrameExplanation

METHODS = tuple(ExplanationJob.Method.values)
logger = logging.getLogger(__name__)


def _invalid(field: str, message: str, code: str) -> ValidationError:
    return ValidationError({field: ValidationError(message, code=code)})


def queue_job(job_id: int) -> None:
    from .tasks import explain_run

    explain_run.apply_async((job_id,), queue=settings.CTS_TRAINING_QUEUE)


def _checked_params(method: str, params: dict | None) -> dict | None:
    """The method's parameters as the pure code reads them back (None: its defaults, chosen on the worker)."""
    if params is None:
        return None
    if not isinstance(params, dict):
        raise _invalid("params", "Give the parameters of a method as an object of names and values.", "bad_params")
    # Imported on use: the parameter classes live beside the methods, which pull in torch.
    from mlworker.explain import params_from_dict

    try:
        return params_from_dict(method, params).to_dict()
    except (TypeError, ValueError) as error:
        raise _invalid("params", f"Parameters of {method}: {error}", "bad_params") from None


def _delete_rows(job: ExplanationJob) -> None:
    for row in FrameExplanation.objects.filter(job=job):
        for field in ("attribution", "heatmap", "overlay"):
            name = getattr(row, field).name
            if name:
                default_storage.delete(name)
    FrameExplanation.objects.filter(job=job).delete()


@transaction.atomic
def jobs_queue(*, run: TrainingRun, methods: list[str] | None = None,
               params: dict[str, dict] | None = None) -> list[ExplanationJob]:
    """Queue the explanation of a done run's test frames by each method; frames already explained are kept.

    New parameters for a method whose maps exist replace them (the old maps are deleted), so one job's maps
    always share one set of parameters.
    """
    run = TrainingRun.objects.select_for_update().get(pk=run.pk)
    if run.status != TrainingRun.Status.DONE or not run.weights:
        raise _invalid("run", f"Only a finished model can be explained; {run.model_name} (run {run.pk}) is "
                              f"{run.get_status_display().lower()}.", "run_not_done")
    methods = list(methods or METHODS)
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        raise _invalid("methods", f"Unknown method(s) {unknown}; choose from {list(METHODS)}.", "unknown_method")
    params = params or {}
    if not isinstance(params, dict) or set(params) - set(methods):
        raise _invalid("params", "Give parameters as {method: {name: value}} for the methods queued.", "bad_params")
    checked = {method: _checked_params(method, params.get(method)) for method in methods}
    jobs = []
    for method in methods:
        job, created = ExplanationJob.objects.select_for_update().get_or_create(
            run=run, method=method, defaults={"seed": run.config.get("seed", 0), "params": checked[method] or {}})
        if not created:
            if not job.is_finished:
                raise _invalid("methods", f"{job.get_method_display()} of {run.model_name} is already "
                                          f"{job.get_status_display().lower()}.", "already_queued")
            if checked[method] is not None and checked[method] != job.params:
                _delete_rows(job)
                job.params = checked[method]
            job.status, job.cancel_requested, job.error = ExplanationJob.Status.QUEUED, False, ""
            job.task_id, job.worker, job.finished_at = "", "", None
            job.lease_token, job.lease_expires_at = "", None
            job.save()
        queue_on_commit(EXPLANATION, job.pk)
        jobs.append(job)
    return jobs


def jobs_queue_after_training(*, run_id: int) -> None:
    """A run just finished DONE: explain its test frames by every method, once its row is committed."""
    if not settings.CTS_EXPLAIN_AFTER_TRAINING:
        return

    def queue() -> None:
        # The run is done whatever happens here: a broker hiccup must not turn it into a failed run.
        try:
            run = TrainingRun.objects.get(pk=run_id)
            if not ExplanationJob.objects.filter(run=run).exists():
                jobs_queue(run=run)
        except Exception:
            logger.exception("Queueing the explanations of run %s failed; queue them from the gallery", run_id)

    transaction.on_commit(queue)


@transaction.atomic
def job_cancel(*, job: ExplanationJob) -> ExplanationJob:
    """Cancel a queued job now; a running one stops after its current hand (the frames done are kept)."""
    return cancel_requested(ExplanationJob, job.pk, stops="after its current hand")


EXPLANATION = JobKind(ExplanationJob, queue=lambda job_id: queue_job(job_id))  # looked up on use: tests replace it


def job_claim(*, job_id: int, task_id: str, worker: str) -> Lease | None:
    """Take a queued job, or one whose worker died (lease expired); None while a live worker has it."""
    return lease_claim(EXPLANATION, job_id, where=Q(cancel_requested=False), task_id=task_id, worker=worker,
                       error="", started_at=timezone.now(), heartbeat_at=timezone.now())


def jobs_requeue_orphans(*, worker: str) -> list[int]:
    """Jobs a worker of this name held when it died: queue them again; they resume at the next unexplained frame."""
    return requeue_running(EXPLANATION, Q(worker=worker))


def job_finish(lease: Lease, status: str, **fields) -> bool:
    """End the job if this worker still holds it."""
    return lease.finish(status, finished_at=timezone.now(), **fields)
