from django.conf import settings
from django.db import models
from simple_history.models import HistoricalRecords

from studyapp.cohort.models import Hand
from studyapp.sites.models import Site


class Clip(models.Model):
    """One short-axis ultrasound clip of a hand at the carpal tunnel inlet, as uploaded."""

    class Format(models.TextChoices):
        VIDEO = "video", "Video"
        DICOM = "dicom", "DICOM"

    class SpacingSource(models.TextChoices):
        NONE = "", "Not set"
        DICOM = "dicom", "DICOM ultrasound region"
        ENTERED = "entered", "Entered at upload"
        CALIBRATED = "calibrated", "Measured between two points"

    class Extraction(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    hand = models.ForeignKey(Hand, on_delete=models.PROTECT, related_name="clips")
    file = models.FileField(upload_to="clips/", max_length=300)
    original_filename = models.CharField(max_length=255)
    sha256 = models.CharField(max_length=64, unique=True)
    size_bytes = models.BigIntegerField()
    format = models.CharField(max_length=8, choices=Format.choices)
    container = models.CharField(max_length=16)
    frame_count = models.PositiveIntegerField()
    fps = models.FloatField(null=True, blank=True)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    is_grey = models.BooleanField(default=True)
    pixel_spacing_row_mm = models.FloatField(null=True, blank=True)
    pixel_spacing_col_mm = models.FloatField(null=True, blank=True)
    spacing_source = models.CharField(max_length=12, choices=SpacingSource.choices, blank=True, default="")
    class SiteSource(models.TextChoices):
        NONE = "", "Not set"
        DICOM = "dicom", "DICOM header"
        ENTERED = "entered", "Entered at upload"
        CORRECTED = "corrected", "Corrected after upload"

    # Where and on what the clip was acquired: external validation splits by these.
    site = models.ForeignKey(Site, on_delete=models.PROTECT, null=True, blank=True, related_name="clips")
    institution_name = models.CharField(max_length=120, blank=True, default="",
                                        help_text="DICOM InstitutionName as read from the file.")
    site_source = models.CharField(max_length=12, choices=SiteSource.choices, blank=True, default="")
    scanner_manufacturer = models.CharField(max_length=120, blank=True, default="")
    scanner_model = models.CharField(max_length=120, blank=True, default="")
    probe = models.CharField(max_length=120, blank=True, default="")
    frequency_mhz = models.FloatField(null=True, blank=True)
    notes = models.TextField(blank=True, default="")
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True,
                                    related_name="+")
    uploaded_at = models.DateTimeField(auto_now_add=True)
    # Who should annotate it; empty means any annotator may take it. Changes are kept in the history.
    assigned_to = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                    related_name="assigned_clips")

    # The extraction job as asked for, frozen when it is queued (upload or retry): a rerun after a worker
    # died does this work again, whatever the study settings say by then.
    extraction_frames_per_clip = models.PositiveIntegerField(
        help_text="Frames per clip the study asked for when this clip's extraction was queued.")
    # Written by the extraction task; the UI polls these.
    extraction_status = models.CharField(max_length=8, choices=Extraction.choices, default=Extraction.QUEUED)
    extraction_done = models.PositiveIntegerField(default=0)
    extraction_total = models.PositiveIntegerField(default=0)
    extraction_error = models.TextField(blank=True, default="")
    extraction_task_id = models.CharField(max_length=64, blank=True, default="",
                                          help_text="The lease token of the worker extracting (common.jobs).")
    extraction_lease_expires_at = models.DateTimeField(
        null=True, blank=True, help_text="While extracting: the worker renews this; once past, another may take over.")
    extraction_started_at = models.DateTimeField(null=True, blank=True)
    extraction_finished_at = models.DateTimeField(null=True, blank=True)
    history = HistoricalRecords(excluded_fields=["extraction_done", "extraction_started_at", "extraction_task_id",
                                                 "extraction_lease_expires_at"])

    class Meta:
        ordering = ["hand", "uploaded_at"]
        permissions = [("assign_clip", "Can assign a clip to an annotator"),
                       ("correct_site", "Can correct a clip's site and scanner (audited, with a reason)")]
        constraints = [
            models.CheckConstraint(
                condition=(models.Q(pixel_spacing_row_mm__isnull=True, pixel_spacing_col_mm__isnull=True)
                           | models.Q(pixel_spacing_row_mm__gt=0, pixel_spacing_col_mm__gt=0)),
                name="clip_spacing_both_positive", violation_error_code="invalid_spacing",
                violation_error_message="Give both pixel spacings, each above 0 mm, or neither."),
            models.CheckConstraint(condition=models.Q(extraction_frames_per_clip__gte=1),
                                   name="clip_extraction_frames_per_clip_positive",
                                   violation_error_code="invalid_frames_per_clip",
                                   violation_error_message="Frames per clip must be at least 1."),
        ]

    def __str__(self) -> str:
        return f"Clip {self.pk} of {self.hand}"

    @property
    def extraction_stuck(self) -> bool:
        """Running, but its worker stopped renewing the lease: the PI may retry it (or a worker requeues it)."""
        from .services import clip_extraction_stuck  # the lease rules live with the job's claim

        return clip_extraction_stuck(self)

    @property
    def spacing_mm(self) -> tuple[float, float] | None:
        if self.pixel_spacing_row_mm is None:
            return None
        return (self.pixel_spacing_row_mm, self.pixel_spacing_col_mm)


class Frame(models.Model):
    """One extracted frame, stored losslessly as PNG."""

    clip = models.ForeignKey(Clip, on_delete=models.CASCADE, related_name="frames")
    index = models.PositiveIntegerField(help_text="Frame number in the source clip, from 0.")
    timestamp_s = models.FloatField(null=True, blank=True)
    image = models.FileField(max_length=300)
    sha256 = models.CharField(max_length=64, blank=True, default="",
                              help_text="Of the PNG's bytes: a locked split's manifest records it, training checks it.")
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    channels = models.PositiveSmallIntegerField()

    class Meta:
        ordering = ["clip", "index"]
        constraints = [models.UniqueConstraint(
            fields=["clip", "index"], name="frame_unique_index_per_clip", violation_error_code="frame_exists",
            violation_error_message="This clip already has a frame with this index.")]

    def __str__(self) -> str:
        return f"Frame {self.index} of clip {self.clip_id}"
