from django.conf import settings
from django.utils import timezone

from .liveness import Beat, liveness_report
from .models import WorkerHeartbeat


def workers_liveness() -> dict:
    """Which workers beat recently, and whether the default and the training queue each have a live one."""
    beats = [Beat(hostname=row.hostname, queues=tuple(filter(None, row.queues.split(","))), seen_at=row.seen_at)
             for row in WorkerHeartbeat.objects.all()]
    return liveness_report(beats, queues={"default": settings.CELERY_TASK_DEFAULT_QUEUE,
                                          "training": settings.CTS_TRAINING_QUEUE},
                           now=timezone.now(), interval_s=settings.CTS_WORKER_HEARTBEAT_S)
