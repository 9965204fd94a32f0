from celery import shared_task

from .services import worker_heartbeat_record


@shared_task(name="ops.heartbeat", bind=True, max_retries=0, ignore_result=True)
def heartbeat(self) -> str:
    """Record that a worker picked up work now (idempotent: one row per worker node name)."""
    hostname = self.request.hostname or "unknown"
    worker_heartbeat_record(hostname=hostname, queues=list(self.app.amqp.queues.consume_from))
    return hostname
