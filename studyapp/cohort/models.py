from django.conf import settings
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import models
from django.utils import timezone
from simple_history.models import HistoricalRecords

from . import staging
from .staging import Group, Recruitment
from .validators import ADULT_AGE_YEARS, validate_adult_age, validate_study_code


class Participant(models.Model):
    """A pseudonymous study participant: no names, addresses or dates of birth are stored."""

    class Sex(models.TextChoices):
        FEMALE = "female", "Female"
        MALE = "male", "Male"
        OTHER = "other", "Other"

    class RecruitmentChoice(models.TextChoices):
        HEALTHY_VOLUNTEER = Recruitment.HEALTHY_VOLUNTEER.value, "Healthy volunteer"
        PATIENT = Recruitment.PATIENT.value, "Patient"

    study_code = models.CharField(
        max_length=32, unique=True, validators=[validate_study_code],
        help_text="Pseudonymous code (letters, digits, '-' or '_'); never a name or a hospital number.")
    sex = models.CharField(max_length=8, choices=Sex.choices)
    age = models.PositiveSmallIntegerField("age (years)", validators=[validate_adult_age],
                                           help_text="Age in years at enrollment.")
    recruitment = models.CharField(max_length=20, choices=RecruitmentChoice.choices)
    enrolled_on = models.DateField(default=timezone.localdate)
    created_at = models.DateTimeField(auto_now_add=True)
    version = models.PositiveIntegerField(
        default=1, editable=False, help_text="Bumped on every edit; an edit made on an older version is refused.")
    history = HistoricalRecords()

    class Meta:
        ordering = ["study_code"]
        permissions = [("view_demographics", "Can view participant demographics")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(age__gte=ADULT_AGE_YEARS[0], age__lte=ADULT_AGE_YEARS[1]),
                name="participant_age_adult", violation_error_code="age_out_of_range",
                violation_error_message="Participants are adults: the age must be from %d to %d years."
                                        % ADULT_AGE_YEARS),
        ]

    def __str__(self) -> str:
        return self.study_code


class Hand(models.Model):
    class Side(models.TextChoices):
        LEFT = "left", "Left"
        RIGHT = "right", "Right"

    class ExclusionReason(models.TextChoices):
        INCLUDED = "", "Included"
        PRIOR_WRIST_SURGERY = "prior_wrist_surgery", "Prior wrist surgery"
        PRIOR_CARPAL_TUNNEL_RELEASE = "prior_carpal_tunnel_release", "Prior carpal tunnel release"
        OTHER = "other", "Other"

    class GroupChoice(models.TextChoices):
        CONTROL = Group.CONTROL.value, "Control"
        CTS = Group.CTS.value, "CTS"
        EXCLUDED = Group.EXCLUDED.value, "Excluded"
        NEEDS_REVIEW = Group.NEEDS_REVIEW.value, "Needs review"

    participant = models.ForeignKey(Participant, on_delete=models.PROTECT, related_name="hands")
    side = models.CharField(max_length=5, choices=Side.choices)
    exclusion_reason = models.CharField(max_length=32, choices=ExclusionReason.choices, blank=True, default="")
    exclusion_detail = models.TextField(blank=True, default="")

    # Derived by services.hand_restage from staging.assess_hand; never typed by a person.
    stage = models.PositiveSmallIntegerField(null=True, blank=True, editable=False)
    group = models.CharField(max_length=16, choices=GroupChoice.choices, default=Group.NEEDS_REVIEW,
                             editable=False)
    staging_reason = models.TextField(blank=True, default="", editable=False)
    staged_dml_threshold_ms = models.FloatField("DML threshold used (ms)", null=True, editable=False)
    staged_sncv_threshold_m_s = models.FloatField("SNCV threshold used (m/s)", null=True, editable=False)
    staged_at = models.DateTimeField(null=True, editable=False)
    version = models.PositiveIntegerField(
        default=1, editable=False, help_text="Bumped on every edit; an edit made on an older version is refused.")
    history = HistoricalRecords()

    class Meta:
        ordering = ["participant__study_code", "side"]
        # Raters trace CSA blind to the diagnosis: group, stage, staging, EPS, recruitment and eligibility.
        permissions = [("view_diagnosis", "Can view the diagnosis of hands (group, stage, EPS, recruitment)")]
        constraints = [
            models.UniqueConstraint(fields=["participant", "side"], name="hand_unique_side_per_participant",
                                    violation_error_code="hand_side_taken",
                                    violation_error_message="This participant already has a hand on this side."),
            models.CheckConstraint(condition=models.Q(stage__isnull=True) | models.Q(stage__gte=1, stage__lte=5),
                                   name="hand_stage_1_to_5", violation_error_code="stage_out_of_range",
                                   violation_error_message="A stage is from 1 to 5, or empty for a hand to review."),
        ]

    def __str__(self) -> str:
        return f"{self.participant.study_code} {self.side}"

    def clean(self):
        if self.exclusion_reason == self.ExclusionReason.OTHER and not self.exclusion_detail.strip():
            raise ValidationError({"exclusion_detail": "Describe the reason when excluding for 'other'."},
                                  code="exclusion_detail_required")

    @property
    def staged_thresholds(self) -> staging.Thresholds | None:
        if self.staged_dml_threshold_ms is None:
            return None
        return staging.Thresholds(dml_ms=self.staged_dml_threshold_ms, sncv_m_s=self.staged_sncv_threshold_m_s)


class EpsExam(models.Model):
    """One electrophysiology exam; the hand's current exam is its latest, older ones stay as history."""

    hand = models.ForeignKey(Hand, on_delete=models.PROTECT, related_name="eps_exams")
    exam_date = models.DateField()
    dml_ms = models.FloatField("DML (ms)", null=True, blank=True)
    sncv_m_s = models.FloatField("SNCV (m/s)", null=True, blank=True)
    motor_response_absent = models.BooleanField(default=False)
    sensory_response_absent = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    version = models.PositiveIntegerField(
        default=1, editable=False, help_text="Bumped on every edit; an edit made on an older version is refused.")
    history = HistoricalRecords()

    class Meta:
        ordering = ["-exam_date", "-id"]
        get_latest_by = ["exam_date", "id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(dml_ms__isnull=True) | models.Q(dml_ms__gte=staging.DML_RANGE_MS[0],
                                                                   dml_ms__lte=staging.DML_RANGE_MS[1]),
                name="eps_dml_in_range", violation_error_code="out_of_range",
                violation_error_message="The DML must be from %g to %g ms." % staging.DML_RANGE_MS),
            models.CheckConstraint(
                condition=models.Q(sncv_m_s__isnull=True) | models.Q(sncv_m_s__gte=staging.SNCV_RANGE_M_S[0],
                                                                     sncv_m_s__lte=staging.SNCV_RANGE_M_S[1]),
                name="eps_sncv_in_range", violation_error_code="out_of_range",
                violation_error_message="The SNCV must be from %g to %g m/s." % staging.SNCV_RANGE_M_S),
        ]

    def __str__(self) -> str:
        return f"EPS {self.hand} {self.exam_date}"

    @property
    def findings(self) -> staging.EpsFindings:
        return staging.EpsFindings(dml_ms=self.dml_ms, sncv_m_s=self.sncv_m_s,
                                   motor_response_absent=self.motor_response_absent,
                                   sensory_response_absent=self.sensory_response_absent)

    def clean(self):
        errors: dict[str, list[ValidationError]] = {}
        for error in staging.eps_errors(self.findings):
            errors.setdefault(error.field or NON_FIELD_ERRORS, []).append(
                ValidationError(error.message, code=error.code))
        if errors:
            raise ValidationError(errors)


class CsaMeasurement(models.Model):
    """A manual median-nerve cross-sectional area; several per hand are allowed."""

    class Site(models.TextChoices):
        CARPAL_TUNNEL_INLET = "carpal_tunnel_inlet", "Carpal tunnel inlet"
        CARPAL_TUNNEL_OUTLET = "carpal_tunnel_outlet", "Carpal tunnel outlet"
        FOREARM = "forearm", "Distal forearm"

    class Method(models.TextChoices):
        MANUAL = "manual", "Manual (scanner)"
        OUTLINE = "outline", "Traced outline on a frame"

    hand = models.ForeignKey(Hand, on_delete=models.PROTECT, related_name="csa_measurements")
    csa_mm2 = models.FloatField("CSA (mm²)")
    method = models.CharField(max_length=8, choices=Method.choices, default=Method.MANUAL)
    site = models.CharField(max_length=24, choices=Site.choices, default=Site.CARPAL_TUNNEL_INLET)
    measured_on = models.DateField(default=timezone.localdate)
    measured_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True,
                                    related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    version = models.PositiveIntegerField(
        default=1, editable=False, help_text="Bumped on every edit; an edit made on an older version is refused.")
    history = HistoricalRecords()

    class Meta:
        ordering = ["-measured_on", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(csa_mm2__gt=staging.CSA_RANGE_MM2[0], csa_mm2__lte=staging.CSA_RANGE_MM2[1]),
                name="csa_in_range", violation_error_code="out_of_range",
                violation_error_message="The CSA must be above %g and at most %g mm²." % staging.CSA_RANGE_MM2),
        ]

    def __str__(self) -> str:
        return f"CSA {self.hand} {self.csa_mm2} mm²"

    def clean(self):
        for error in staging.csa_errors(self.csa_mm2):
            raise ValidationError({error.field: ValidationError(error.message, code=error.code)})
