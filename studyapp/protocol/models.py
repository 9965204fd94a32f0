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

    @classmethod
    def current(cls) -> "StudySettings":
        settings, _ = cls.objects.get_or_create(id=1)
        return settings

    @property
    def thresholds(self) -> Thresholds:
        return Thresholds(dml_ms=self.dml_threshold_ms, sncv_m_s=self.sncv_threshold_m_s)
