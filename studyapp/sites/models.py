from django.db import models
from simple_history.models import HistoricalRecords


class Site(models.Model):
    """A hospital or clinic that scans the study's hands; study data the PI manages, audited."""

    code = models.SlugField(max_length=32, unique=True,
                            help_text="Short code shown on splits and dashboards (letters, digits, '-' or '_').")
    name = models.CharField(max_length=200)
    institution_names = models.JSONField(
        default=list, blank=True,
        help_text="DICOM InstitutionName values that mean this site; an upload carrying one is assigned here.")
    notes = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    version = models.PositiveIntegerField(
        default=1, editable=False, help_text="Bumped on every edit; an edit made on an older version is refused.")
    history = HistoricalRecords()

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return self.code
