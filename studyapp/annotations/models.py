from django.conf import settings
from django.db import models
from simple_history.models import HistoricalRecords

from studyapp.clips.models import Frame
from studyapp.cohort.models import CsaMeasurement, Hand


class RoiAnnotation(models.Model):
    """One annotator's square region of interest around the median nerve on one frame."""

    class Status(models.TextChoices):
        KEYFRAME = "keyframe", "Keyframe (placed by hand)"
        PROPOSED = "proposed", "Proposed"
        CONFIRMED = "confirmed", "Confirmed"

    class Method(models.TextChoices):
        MANUAL = "manual", "Placed by the annotator"
        INTERPOLATED = "interpolated", "Interpolated between keyframes"
        TRACKED = "tracked", "Template matching"
        GROUND_TRUTH = "ground_truth", "Phantom ground truth"

    frame = models.ForeignKey(Frame, on_delete=models.CASCADE, related_name="rois")
    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="rois")
    x = models.IntegerField()
    y = models.IntegerField()
    w = models.PositiveIntegerField()
    h = models.PositiveIntegerField()
    status = models.CharField(max_length=10, choices=Status.choices)
    method = models.CharField(max_length=12, choices=Method.choices, default=Method.MANUAL)
    score = models.FloatField(null=True, blank=True)
    version = models.PositiveIntegerField(default=1, help_text="Bumped on every save; a stale save is refused.")
    updated_at = models.DateTimeField(auto_now=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["frame__clip", "frame__index", "annotator"]
        permissions = [("view_all_raters", "Can see every rater's ROIs and outlines"),
                       ("adjudicate", "Can adjudicate disagreements between raters")]
        constraints = [
            models.UniqueConstraint(fields=["frame", "annotator"], name="roi_one_per_frame_and_annotator",
                                    violation_error_code="roi_exists",
                                    violation_error_message="You already have an ROI on this frame; move it instead."),
            models.CheckConstraint(condition=models.Q(x__gte=0, y__gte=0, w__gt=0, h__gt=0), name="roi_box_valid",
                                   violation_error_code="invalid_box",
                                   violation_error_message="An ROI starts inside the frame and has a width and a "
                                                           "height above 0."),
        ]

    def __str__(self) -> str:
        return f"ROI {self.box} on {self.frame} by {self.annotator}"

    @property
    def box(self) -> tuple[int, int, int, int]:
        return (self.x, self.y, self.w, self.h)

    @property
    def is_confirmed(self) -> bool:
        return self.status in (self.Status.CONFIRMED, self.Status.KEYFRAME)


class NerveOutline(models.Model):
    """A traced polygon around the nerve; its area is stored as a CSA measurement of the hand."""

    frame = models.ForeignKey(Frame, on_delete=models.CASCADE, related_name="outlines")
    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="outlines")
    points = models.JSONField(help_text="[[x, y], ...] in pixels of the frame")
    area_mm2 = models.FloatField()
    csa_measurement = models.OneToOneField(CsaMeasurement, on_delete=models.PROTECT, related_name="outline")
    created_at = models.DateTimeField(auto_now_add=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["frame__clip", "frame__index", "annotator"]

    def __str__(self) -> str:
        return f"Outline {self.area_mm2:.1f} mm² on {self.frame} by {self.annotator}"


class RoiAdjudication(models.Model):
    """The PI's decision on a frame where raters' ROIs disagree: whose ROI the dataset uses, or a third box."""

    frame = models.OneToOneField(Frame, on_delete=models.CASCADE, related_name="roi_adjudication")
    chosen_annotator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True,
                                         related_name="+", help_text="The rater whose ROI is kept; empty for a "
                                                                     "third box.")
    x = models.IntegerField(null=True, blank=True)
    y = models.IntegerField(null=True, blank=True)
    w = models.PositiveIntegerField(null=True, blank=True)
    h = models.PositiveIntegerField(null=True, blank=True)
    note = models.TextField(blank=True, default="")
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    decided_at = models.DateTimeField(auto_now=True)
    history = HistoricalRecords()

    class Meta:
        constraints = [models.CheckConstraint(
            condition=(models.Q(chosen_annotator__isnull=False, x__isnull=True, y__isnull=True, w__isnull=True,
                                h__isnull=True)
                       | models.Q(chosen_annotator__isnull=True, x__gte=0, y__gte=0, w__gt=0, h__gt=0)),
            name="roi_adjudication_rater_or_box", violation_error_code="rater_or_box",
            violation_error_message="Keep one rater's ROI or give a third box, not both.")]

    def __str__(self) -> str:
        return f"ROI adjudication on {self.frame}"

    @property
    def box(self) -> tuple[int, int, int, int] | None:
        return None if self.chosen_annotator_id else (self.x, self.y, self.w, self.h)


class CsaAdjudication(models.Model):
    """The PI's decision on a hand whose raters' outline CSA differ: whose value is kept, or a third value."""

    hand = models.OneToOneField(Hand, on_delete=models.CASCADE, related_name="csa_adjudication")
    chosen_annotator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True,
                                         related_name="+")
    csa_mm2 = models.FloatField("CSA (mm²)", null=True, blank=True)
    note = models.TextField(blank=True, default="")
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    decided_at = models.DateTimeField(auto_now=True)
    history = HistoricalRecords()

    class Meta:
        constraints = [models.CheckConstraint(
            condition=(models.Q(chosen_annotator__isnull=False, csa_mm2__isnull=True)
                       | models.Q(chosen_annotator__isnull=True, csa_mm2__gt=0)),
            name="csa_adjudication_rater_or_value", violation_error_code="rater_or_value",
            violation_error_message="Keep one rater's CSA or give a third value, not both.")]

    def __str__(self) -> str:
        return f"CSA adjudication of {self.hand}"
