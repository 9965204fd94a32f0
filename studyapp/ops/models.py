from django.db import models


class WorkerHeartbeat(models.Model):
    """The last time each worker answered a ping: tells the UI whether background work can run."""

    hostname = models.CharField(max_length=200, unique=True)
    seen_at = models.DateTimeField()
    queues = models.CharField(max_length=200, blank=True, default="")

    def __str__(self) -> str:
        return f"{self.hostname} at {self.seen_at:%Y-%m-%d %H:%M:%S}"


class BackgroundJob(models.Model):
    """A long job without a row of its own (e.g. seeding the demo study): status and progress for the UI."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    kind = models.CharField(max_length=40)
    params = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    done = models.PositiveIntegerField(default=0)
    total = models.PositiveIntegerField(default=0)
    message = models.CharField(max_length=300, blank=True, default="")
    error = models.TextField(blank=True, default="")
    worker = models.CharField(max_length=200, blank=True, default="")
    checkpoint = models.JSONField(null=True, blank=True, help_text="Where a restarted job resumes (its own format).")
    lease_token = models.CharField(max_length=32, blank=True, default="", help_text="The holder's claim (common.jobs).")
    lease_expires_at = models.DateTimeField(null=True, blank=True,
                                            help_text="While running: renewed by the worker; once past, it restarts.")
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.kind} ({self.status} {self.done}/{self.total})"
