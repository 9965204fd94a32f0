from django.conf import settings as django_settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from simple_history.models import HistoricalRecords

from studyapp.cohort.models import CsaMeasurement
from studyapp.cohort.staging import Thresholds


class StudySettings(models.Model):
    """The protocol's tunable values; one row, audited like clinical data."""

    dml_threshold_ms = models.FloatField(
        "DML threshold (ms)", default=4.5, validators=[MinValueValidator(1.0), MaxValueValidator(10.0)],
        help_text="Distal motor latency at or above which the DML is prolonged (ms).")
    sncv_threshold_m_s = models.FloatField(
        "SNCV threshold (m/s)", default=40.0, validators=[MinValueValidator(10.0), MaxValueValidator(80.0)],
        help_text="Sensory conduction velocity below which the SNCV is slowed (m/s).")
    frames_per_clip = models.PositiveIntegerField(
        "frames per clip", default=100, validators=[MinValueValidator(1), MaxValueValidator(1000)],
        help_text="Frames extracted evenly from each clip.")
    crop_size_mm = models.FloatField(
        "crop size (mm)", default=15.0, validators=[MinValueValidator(2.0), MaxValueValidator(60.0)],
        help_text="Side of the square region of interest around the median nerve (mm).")
    csa_baseline_method = models.CharField(
        "CSA method of the baseline", max_length=8, choices=CsaMeasurement.Method.choices,
        default=CsaMeasurement.Method.MANUAL,
        help_text="Which CSA measurements (each hand's latest at the carpal tunnel inlet) the CSA baseline "
                  "and the CSA comparison between groups use.")

    class PrimaryRater(models.TextChoices):
        MOST_CONFIRMED = "most_confirmed", "The rater with the most confirmed ROIs on each clip"
        NAMED = "named", "A named rater"

    primary_rater_rule = models.CharField(
        "primary rater", max_length=16, choices=PrimaryRater.choices, default=PrimaryRater.MOST_CONFIRMED,
        help_text="Whose confirmed ROIs define the crops a split trains on (an adjudication overrides a frame).")
    primary_rater = models.ForeignKey(
        django_settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+",
        verbose_name="named primary rater",
        help_text="Used when the primary rater is a named rater; clips this rater did not annotate are not ready.")
    raters_blinded = models.BooleanField(
        "raters blinded to each other", default=True,
        help_text="An annotator sees only their own ROIs and outlines. Off: annotators may also see other raters' "
                  "work (the agreement page then says the raters were not independent). The diagnosis is hidden "
                  "from annotators either way.")
    adjudication_iou_threshold = models.FloatField(
        "adjudicate ROIs below IoU", default=0.5, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Frames where two raters' confirmed ROIs overlap less than this go to the PI's review.")
    adjudication_csa_difference_mm2 = models.FloatField(
        "adjudicate CSA differences above (mm²)", default=2.0,
        validators=[MinValueValidator(0.0), MaxValueValidator(100.0)],
        help_text="Hands whose raters' outline CSA differ by more than this go to the PI's review.")
    explain_frames_occlusion = models.PositiveIntegerField(
        "occlusion: test frames per hand", null=True, blank=True, validators=[MinValueValidator(1)],
        help_text="Test frames of each hand explained by occlusion sensitivity, evenly spaced; empty: all.")
    explain_frames_lime = models.PositiveIntegerField(
        "LIME: test frames per hand", null=True, blank=True, default=10, validators=[MinValueValidator(1)],
        help_text="Test frames of each hand explained by LIME, evenly spaced; empty: all (LIME is the slowest).")
    explain_frames_gradcam = models.PositiveIntegerField(
        "Grad-CAM: test frames per hand", null=True, blank=True, validators=[MinValueValidator(1)],
        help_text="Test frames of each hand explained by Grad-CAM, evenly spaced; empty: all.")
    perineural_ring_mm = models.FloatField(
        "perineural ring (mm)", default=1.0, validators=[MinValueValidator(0.1), MaxValueValidator(10.0)],
        help_text="Width of the band just outside the nerve outline whose share of the attribution is measured.")
    updated_at = models.DateTimeField(auto_now=True)
    history = HistoricalRecords()

    class Meta:
        verbose_name = "study settings"
        verbose_name_plural = "study settings"
        constraints = [models.CheckConstraint(
            condition=models.Q(id=1), name="study_settings_singleton", violation_error_code="singleton",
            violation_error_message="The study has one settings row; change it rather than adding another.")]

    def __str__(self) -> str:
        return "Study settings"

    def clean(self):
        if self.primary_rater_rule == self.PrimaryRater.NAMED and self.primary_rater_id is None:
            raise ValidationError({"primary_rater": ValidationError(
                "Name the primary rater, or let the rater with the most confirmed ROIs be primary.",
                code="primary_rater_required")})

    @classmethod
    def current(cls) -> "StudySettings":
        settings, _ = cls.objects.get_or_create(id=1)
        return settings

    @property
    def thresholds(self) -> Thresholds:
        return Thresholds(dml_ms=self.dml_threshold_ms, sncv_m_s=self.sncv_threshold_m_s)
