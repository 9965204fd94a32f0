from django.db import models


class WorkerHeartbeat(models.Model):
    """The last time each worker answered a ping: tells the UI whether background work can run."""

    hostname = models.CharField(max_length=200, unique=True)
    seen_at = models.DateTimeField()
    queues = models.CharField(max_length=200, blank=True, default="")

    def __str__(self) -> str:
        return f"{self.hostname} at {self.seen_at:%Y-%m-%d %H:%M:%S}"
