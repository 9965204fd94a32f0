from django.utils import timezone

from .models import WorkerHeartbeat


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
    from studyapp.reports.services import REPORT

    return [EXTRACTION, TRAINING, EXPLANATION, SEED_DEMO, REPORT]


def jobs_requeue_expired() -> dict[str, list[int]]:
    """Queue again every running job whose lease expired (its worker died): run by each worker's heartbeat."""
    from studyapp.common.jobs import requeue_expired

    requeued = {kind.model.__name__: requeue_expired(kind) for kind in job_kinds()}
    return {name: ids for name, ids in requeued.items() if ids}
