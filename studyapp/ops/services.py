from django.utils import timezone

from .models import WorkerHeartbeat


def worker_heartbeat_record(*, hostname: str, queues: list[str]) -> WorkerHeartbeat:
    """Record that a worker is alive now and which queues it consumes (one row per worker node name)."""
    row, _ = WorkerHeartbeat.objects.update_or_create(
        hostname=hostname, defaults={"seen_at": timezone.now(), "queues": ",".join(sorted(queues))})
    return row
