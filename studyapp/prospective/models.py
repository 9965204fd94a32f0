"""The study's frozen prospective model, its blinded predictions of hands without EPS, and their scoring.

Every row here is written once and never changed or deleted: a save of a stored row, a delete, and the
QuerySet's bulk update and delete are refused (`Immutable`). A model is retired by freezing its successor, a new
row that names it (`supersedes`), so the chain of frozen models is the audit of which one was active when.
"""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.functions import Coalesce
from simple_history.models import HistoricalRecords

from studyapp.clips.models import Clip
from studyapp.cohort.models import EpsExam, Hand
from studyapp.experiments.models import TrainingRun


class Immutable(ValidationError):
    def __init__(self, model_name: str):
        super().__init__(f"A stored {model_name} can't be changed or deleted: the prospective record is written "
                         "once. Freeze a new model (which retires this one) instead.", code="prospective_immutable")


class ImmutableQuerySet(models.QuerySet):
    """Bulk writes can't change a stored row either; creating rows (bulk or not) stays allowed."""

    def update(self, **kwargs):
        raise Immutable(self.model._meta.verbose_name)

    def delete(self):
        raise Immutable(self.model._meta.verbose_name)


class ImmutableModel(models.Model):
    objects = ImmutableQuerySet.as_manager()

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        if not self._state.adding or (self.pk is not None and type(self).objects.filter(pk=self.pk).exists()):
            raise Immutable(self._meta.verbose_name)
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise Immutable(self._meta.verbose_name)


class ProspectiveModel(ImmutableModel):
    """A registered model frozen by the PI as the study's prospective model; the newest unsuperseded is active."""

    run = models.ForeignKey(TrainingRun, on_delete=models.PROTECT, related_name="prospective_freezes")
    weights_sha256 = models.CharField(max_length=64)
    threshold = models.FloatField(help_text="The run's decision threshold: a hand at or above it is predicted CTS.")
    frozen_settings = models.JSONField(help_text="The run's TrainConfig and the study's crop and frame settings.")
    supersedes = models.ForeignKey("self", on_delete=models.PROTECT, null=True, blank=True,
                                   related_name="superseded_by", help_text="The model this one retired.")
    reason = models.TextField(blank=True, default="")
    frozen_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    frozen_at = models.DateTimeField()
    history = HistoricalRecords()

    class Meta:
        ordering = ["-frozen_at"]
        permissions = [("freeze_prospectivemodel", "Can freeze the study's prospective model")]
        constraints = [
            # One root and each model retired at most once: the frozen models form one chain, whose end is the
            # one active model.
            # COALESCE maps the root's NULL to 0 (every backend keeps NULLs apart in a unique index).
            models.UniqueConstraint(Coalesce("supersedes", models.Value(0)), name="prospective_one_active_model",
                                    violation_error_code="prospective_model_active",
                                    violation_error_message="Another model was frozen at the same time; reload "
                                                            "and freeze again to retire the active one."),
        ]

    def __str__(self) -> str:
        return f"{self.run.model_name} (run {self.run_id}) frozen {self.frozen_at:%Y-%m-%d}"


class ProspectivePrediction(ImmutableModel):
    """A frozen model's blinded CTS prediction of a hand whose EPS was not recorded, from its annotated clip."""

    model = models.ForeignKey(ProspectiveModel, on_delete=models.PROTECT, related_name="predictions")
    hand = models.ForeignKey(Hand, on_delete=models.PROTECT, related_name="prospective_predictions")
    clip = models.ForeignKey(Clip, on_delete=models.PROTECT, related_name="+")
    probability = models.FloatField(help_text="Mean of the frames' CTS probabilities, as the retrospective "
                                              "evaluation aggregates a hand.")
    predicted_label = models.PositiveSmallIntegerField(help_text="1 CTS, 0 control, at the model's threshold.")
    frames = models.JSONField(help_text="[{frame, index, probability}]")
    input_sha256 = models.CharField(max_length=64, help_text="Of the frames' sha256 and their ROI boxes.")
    weights_sha256 = models.CharField(max_length=64)
    created_at = models.DateTimeField()
    history = HistoricalRecords()

    class Meta:
        ordering = ["created_at"]
        constraints = [
            models.UniqueConstraint(fields=["model", "hand"], name="prospective_one_prediction_per_hand",
                                    violation_error_code="prospective_predicted",
                                    violation_error_message="This model has already predicted this hand."),
            models.CheckConstraint(condition=models.Q(probability__gte=0, probability__lte=1),
                                   name="prospective_probability_range", violation_error_code="out_of_range",
                                   violation_error_message="A probability is from 0 to 1."),
        ]

    def __str__(self) -> str:
        return f"Prospective prediction of {self.hand} by model {self.model_id}"


class ProspectiveOutcome(ImmutableModel):
    """The scoring of a prediction by the first EPS that staged its hand control or CTS, with the order proven."""

    class Exclusion(models.TextChoices):
        INCLUDED = "", "Included"
        EPS_BEFORE_FREEZE = "eps_before_freeze", "EPS entered before the model was frozen"
        EPS_BEFORE_PREDICTION = "eps_before_prediction", "EPS entered before the prediction was stored"

    prediction = models.OneToOneField(ProspectivePrediction, on_delete=models.PROTECT, related_name="outcome")
    # No database constraint: the exam may be deleted later (its history keeps it); the outcome stays as scored.
    eps_exam = models.ForeignKey(EpsExam, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+")
    eps_exam_version = models.PositiveIntegerField()
    group = models.CharField(max_length=16)
    label = models.PositiveSmallIntegerField(help_text="1 CTS, 0 control, from the derived group.")
    eps_first_entered_at = models.DateTimeField(help_text="The first EPS exam of the hand in the audit trail.")
    exclusion = models.CharField(max_length=24, choices=Exclusion.choices, blank=True, default="")
    scored_at = models.DateTimeField()
    history = HistoricalRecords()

    class Meta:
        ordering = ["scored_at"]
        constraints = [
            models.CheckConstraint(condition=models.Q(label__in=[0, 1]), name="prospective_outcome_label",
                                   violation_error_code="invalid_label",
                                   violation_error_message="An outcome's label is 0 (control) or 1 (CTS)."),
        ]

    def __str__(self) -> str:
        return f"Outcome of {self.prediction}"

    @property
    def included(self) -> bool:
        return not self.exclusion


class ProspectiveEpsChange(ImmutableModel):
    """A later change of a scored hand's EPS or group, recorded beside the outcome it leaves unchanged."""

    outcome = models.ForeignKey(ProspectiveOutcome, on_delete=models.PROTECT, related_name="eps_changes")
    eps_exam_id_now = models.IntegerField(null=True, blank=True, help_text="The hand's current exam (none: deleted).")
    eps_exam_version = models.PositiveIntegerField(null=True, blank=True)
    group = models.CharField(max_length=16)
    label = models.PositiveSmallIntegerField(null=True, blank=True, help_text="The label the hand would get now.")
    recorded_at = models.DateTimeField()
    history = HistoricalRecords()

    class Meta:
        ordering = ["recorded_at"]
        constraints = [
            models.UniqueConstraint(fields=["outcome", "eps_exam_id_now", "eps_exam_version", "group"],
                                    nulls_distinct=False, name="prospective_eps_change_once",
                                    violation_error_code="prospective_change_recorded",
                                    violation_error_message="This change of the hand's EPS is already recorded."),
        ]

    def __str__(self) -> str:
        return f"EPS change after {self.outcome}"
