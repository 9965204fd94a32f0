import logging

from django.db import IntegrityError, transaction
from django.utils import timezone

from .models import BackgroundJob, WorkerHeartbeat

logger = logging.getLogger(__name__)

ACTIVE = (BackgroundJob.Status.QUEUED, BackgroundJob.Status.RUNNING)


def worker_heartbeat_record(*, hostname: str, queues: list[str]) -> WorkerHeartbeat:
    """Record that a worker is alive now and which queues it consumes (one row per worker node name)."""
    row, _ = WorkerHeartbeat.objects.update_or_create(
        hostname=hostname, defaults={"seen_at": timezone.now(), "queues": ",".join(sorted(queues))})
    return row


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


def background_job_claim(job_id: int) -> BackgroundJob | None:
    """Take a queued job for this worker with a conditional update; None when another delivery holds it or it ended."""
    claimed = BackgroundJob.objects.filter(pk=job_id, status=BackgroundJob.Status.QUEUED).update(
        status=BackgroundJob.Status.RUNNING, started_at=timezone.now())
    return BackgroundJob.objects.get(pk=job_id) if claimed else None


def background_job_progress(job_id: int, *, done: int, total: int, message: str = "") -> None:
    BackgroundJob.objects.filter(pk=job_id).update(done=done, total=total, message=message[:300])


def background_job_finish(job_id: int, *, result, message: str = "") -> BackgroundJob:
    BackgroundJob.objects.filter(pk=job_id).update(status=BackgroundJob.Status.DONE, result=result,
                                                   message=message[:300], finished_at=timezone.now())
    return BackgroundJob.objects.get(pk=job_id)


def background_job_fail(job_id: int, *, error: str) -> BackgroundJob:
    BackgroundJob.objects.filter(pk=job_id).update(status=BackgroundJob.Status.FAILED, error=error,
                                                   finished_at=timezone.now())
    return BackgroundJob.objects.get(pk=job_id)
