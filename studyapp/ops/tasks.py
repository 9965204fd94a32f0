from celery import shared_task
from django.utils import timezone

from .models import WorkerHeartbeat


@shared_task(name="ops.heartbeat", bind=True, max_retries=0, ignore_result=True)
def heartbeat(self) -> str:
    """Record that a worker picked up work now (idempotent: one row per worker host)."""
    hostname = self.request.hostname or "unknown"
    queue = (self.request.delivery_info or {}).get("routing_key") or ""
    WorkerHeartbeat.objects.update_or_create(hostname=hostname,
                                             defaults={"seen_at": timezone.now(), "queues": queue})
    return hostname
