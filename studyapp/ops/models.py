from django.conf import settings
from django.db import models


class WorkerHeartbeat(models.Model):
    """The last time each worker answered a ping: tells the UI whether background work can run."""

    hostname = models.CharField(max_length=200, unique=True)
    seen_at = models.DateTimeField()
    queues = models.CharField(max_length=200, blank=True, default="")

    def __str__(self) -> str:
        return f"{self.hostname} at {self.seen_at:%Y-%m-%d %H:%M:%S}"


class BackgroundJob(models.Model):
    """A job without a row of its own (seeding the demo, propagating ROIs, a prediction): its status, progress
    and result, which the page that queued it polls."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    kind = models.CharField(max_length=40)
    key = models.CharField(max_length=200, blank=True, default="",
                           help_text="What the job works on: a second request for the same work while this one is "
                                     "queued or running gets this job instead of a new one.")
    params = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                   related_name="+")
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
    result = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(
            fields=["kind", "key"], condition=models.Q(status__in=["queued", "running"]) & ~models.Q(key=""),
            name="backgroundjob_one_active_per_key", violation_error_code="job_active",
            violation_error_message="The same work is already queued or running; follow that job instead.")]

    @property
    def is_finished(self) -> bool:
        return self.status in (self.Status.DONE, self.Status.FAILED)

    def __str__(self) -> str:
        return f"{self.kind} ({self.status} {self.done}/{self.total})"
