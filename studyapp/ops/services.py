import logging
from collections.abc import Callable

from celery import current_app
from django.db import IntegrityError, transaction
from django.utils import timezone

from studyapp.common.jobs import JobKind, Lease, LeaseLost, lease_claim, lease_kept

from .models import BackgroundJob, WorkerHeartbeat

logger = logging.getLogger(__name__)

ACTIVE = (BackgroundJob.Status.QUEUED, BackgroundJob.Status.RUNNING)


def worker_heartbeat_record(*, hostname: str, queues: list[str]) -> WorkerHeartbeat:
    """Record that a worker is alive now and which queues it consumes (one row per worker node name)."""
    row, _ = WorkerHeartbeat.objects.update_or_create(
        hostname=hostname, defaults={"seen_at": timezone.now(), "queues": ",".join(sorted(queues))})
    return row


def job_kinds() -> list:
    """Every kind of background job (common.jobs.JobKind), each declared beside the rows it owns."""
    from studyapp.clips.services import EXTRACTION
    from studyapp.demo.jobs import SEED_DEMO
    from studyapp.experiments.services import TRAINING
    from studyapp.explanations.services import EXPLANATION
    from studyapp.annotations.services import PROPAGATION
    from studyapp.experiments.prediction_jobs import PREDICTION
    from studyapp.prospective.jobs import PROSPECTIVE_PREDICTION
    from studyapp.reports.services import REPORT

    return [EXTRACTION, TRAINING, EXPLANATION, SEED_DEMO, REPORT, PROPAGATION, PREDICTION, PROSPECTIVE_PREDICTION]


def jobs_requeue_expired() -> dict[str, list[int]]:
    """Queue again every running job whose lease expired (its worker died): run by each worker's heartbeat."""
    from studyapp.common.jobs import requeue_expired

    requeued = {kind.model.__name__: requeue_expired(kind) for kind in job_kinds()}
    return {name: ids for name, ids in requeued.items() if ids}


def background_job_queue(*, kind: str, key: str, params: dict, created_by, task, total: int = 0) -> BackgroundJob:
    """The queued or running job of `kind` for `key`, or a new one that `task.delay(job_id)` gets after commit.

    Two requests for the same work (a double click, two tabs) share one job; the partial unique constraint
    settles a race between them.
    """
    active = BackgroundJob.objects.filter(kind=kind, key=key, status__in=ACTIVE)
    if existing := active.first():
        return existing
    try:
        with transaction.atomic():
            job = BackgroundJob.objects.create(kind=kind, key=key, params=params, created_by=created_by, total=total)
    except IntegrityError:
        return active.get()
    transaction.on_commit(lambda: _send(task, job.pk))
    return job


def _send(task, job_id: int) -> None:
    try:
        task.delay(job_id)
    except Exception:  # noqa: BLE001 - the broker is down: fail the job, so it never blocks the next request
        logger.exception("Job %s could not be queued", job_id)
        background_job_fail(job_id, error="The task queue could not be reached, so the job was not started. "
                                          "Try again in a moment; if it keeps failing, tell the study's "
                                          "administrator that the broker is down.")


def background_job_kind(kind: str, task_name: str) -> JobKind:
    """A kind of BackgroundJob run under the shared lease (common.jobs): claimed once, requeued if its worker dies."""
    return JobKind(BackgroundJob, queue=lambda job_id: _send(current_app.tasks[task_name], job_id), only={"kind": kind})


def background_job_claim(kind: JobKind, job_id: int, *, worker: str = "") -> tuple[BackgroundJob, Lease] | None:
    """Take a queued job, or one whose worker died (lease expired); None when a live worker holds it or it ended."""
    lease = lease_claim(kind, job_id, worker=worker, error="", started_at=timezone.now())
    return (BackgroundJob.objects.get(pk=job_id), lease) if lease else None


def background_job_run(kind: JobKind, job_id: int, work: Callable[[BackgroundJob, Lease], BackgroundJob], *,
                       worker: str = "") -> BackgroundJob | None:
    """Claim the job and run `work(job, lease)` while the lease is renewed; None when not ours to run.

    A second delivery of a live job, or a job another worker took over meanwhile, runs nothing here.
    """
    claimed = background_job_claim(kind, job_id, worker=worker)
    if claimed is None:
        return None
    job, lease = claimed
    with lease_kept(lease):
        try:
            return work(job, lease)
        except LeaseLost:  # another worker took the job over after this one's lease expired
            return None


def background_job_progress(lease: Lease, *, done: int, total: int, message: str = "") -> None:
    lease.check()
    lease.update(done=done, total=total, message=message[:300])


def background_job_finish(lease: Lease, *, result, message: str = "") -> BackgroundJob:
    lease.finish(BackgroundJob.Status.DONE, result=result, message=message[:300], finished_at=timezone.now())
    return BackgroundJob.objects.get(pk=lease.pk)


def background_job_fail(job_id: int, *, error: str, lease: Lease | None = None) -> BackgroundJob:
    """Record a job failed (fenced by the lease when a worker holds it; the web fails a job it could not queue)."""
    fields = {"error": error, "finished_at": timezone.now()}
    if lease is not None:
        lease.finish(BackgroundJob.Status.FAILED, **fields)
    else:
        BackgroundJob.objects.filter(pk=job_id).update(status=BackgroundJob.Status.FAILED, **fields)
    return BackgroundJob.objects.get(pk=job_id)
