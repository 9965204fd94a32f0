from django.conf import settings
from django.db import models

from studyapp.experiments.models import Experiment


class StudyReport(models.Model):
    """One generation of an experiment's study report: progress for the UI, then the HTML file and the bundle.

    The files live in Django's default storage and are served only through the reports views (PI/admin).
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    experiment = models.ForeignKey(Experiment, on_delete=models.PROTECT, related_name="reports")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    done = models.PositiveIntegerField(default=0)
    total = models.PositiveIntegerField(default=0)
    message = models.CharField(max_length=300, blank=True, default="")
    error = models.TextField(blank=True, default="")
    html = models.FileField(max_length=300, blank=True)
    bundle = models.FileField(max_length=300, blank=True)
    bundle_sha256 = models.CharField(max_length=64, blank=True, default="")
    lease_token = models.CharField(max_length=32, blank=True, default="", help_text="The holder's claim (common.jobs).")
    lease_expires_at = models.DateTimeField(null=True, blank=True,
                                            help_text="While running: renewed by the worker; once past, it restarts.")
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"Report of {self.experiment} ({self.status} {self.done}/{self.total})"

    @property
    def is_finished(self) -> bool:
        return self.status in (self.Status.DONE, self.Status.FAILED)
