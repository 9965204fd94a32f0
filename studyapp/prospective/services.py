"""Writes of the prospective study: freeze a model, queue and store blinded predictions, score them at EPS.

The order the analysis relies on is proven from the audit trail: a prediction counts only when it was stored
before the hand's first EPS exam was entered (the exam's first history record), and after the model was frozen.
"""

from __future__ import annotations

import hashlib
import json

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from studyapp.annotations.services import ANCHORS
from studyapp.clips.models import Clip, Frame
from studyapp.cohort.models import EpsExam, Hand
from studyapp.experiments import datasets
from studyapp.experiments.models import TrainingRun
from studyapp.ops import services as ops_services
from studyapp.ops.models import BackgroundJob
from studyapp.protocol.models import StudySettings

from .jobs import PREDICT_JOB
from .models import ProspectiveEpsChange, ProspectiveModel, ProspectiveOutcome, ProspectivePrediction


def _invalid(field: str, message: str, code: str) -> ValidationError:
    return ValidationError({field: ValidationError(message, code=code)})


def prospective_model_active() -> ProspectiveModel | None:
    """The frozen model no later freeze retired, or None before the PI freezes one."""
    return (ProspectiveModel.objects.filter(superseded_by__isnull=True).select_related("run__experiment")
            .first())


def _settings_snapshot(run: TrainingRun) -> dict:
    study = StudySettings.current()
    return {"config": run.config, "model_name": run.model_name, "threshold": run.evaluation["threshold"],
            "crop_size_mm": study.crop_size_mm, "frames_per_clip": study.frames_per_clip,
            "input_size": run.config.get("input_size"), "manifest_hash": run.manifest_hash,
            "code_version": run.code_version}


@transaction.atomic
def prospective_model_freeze(*, run: TrainingRun, frozen_by, reason: str = "") -> ProspectiveModel:
    """Freeze a registered model as the study's prospective model, retiring the active one; then predict every
    eligible hand (no EPS yet, ROIs confirmed)."""
    if run.status != TrainingRun.Status.DONE or not run.weights or not run.weights_sha256:
        raise _invalid("run", "Only a registered model (a done run with saved weights) can be frozen.",
                       "not_registered")
    if not run.evaluation or run.evaluation.get("threshold") is None:
        raise _invalid("run", "This run has no test evaluation, so it has no threshold to predict at.",
                       "no_threshold")
    active = ProspectiveModel.objects.select_for_update(of=("self",)).filter(superseded_by__isnull=True).first()
    if active is not None and active.run_id == run.pk:
        raise _invalid("run", "This model is already the study's prospective model.", "already_active")
    if active is not None and not reason.strip():
        raise _invalid("reason", f"Say why {active.run.model_name} (run {active.run_id}) is retired: the reason "
                                 "stays in the prospective record.", "reason_required")
    model = ProspectiveModel(run=run, weights_sha256=run.weights_sha256, threshold=run.evaluation["threshold"],
                             frozen_settings=_settings_snapshot(run), supersedes=active, reason=reason.strip(),
                             frozen_by=frozen_by, frozen_at=timezone.now())
    try:
        with transaction.atomic():
            model.save()
    except IntegrityError:  # another freeze retired the same model first
        raise ValidationError(ProspectiveModel._meta.constraints[0].violation_error_message,
                              code="prospective_model_active") from None
    prospective_queue_pending(model=model)
    return model


def prospective_queue_pending(*, model: ProspectiveModel | None = None) -> int:
    """Queue the prediction of every eligible hand (at the freeze; after a bulk import or the demo's seeding,
    which write ROIs without the annotation services' hook). Returns how many hands were queued."""
    model = model or prospective_model_active()
    if model is None:
        return 0
    hands = prospective_hands_eligible(model=model)
    for hand in hands:
        prospective_predict_queue(model=model, hand=hand)
    return len(hands)


def prospective_hands_eligible(*, model: ProspectiveModel, hand_ids=None) -> list[Hand]:
    """Included hands without an EPS exam, not yet predicted by `model`, whose clips' ROIs are all confirmed."""
    hands = (Hand.objects.filter(exclusion_reason="", eps_exams__isnull=True).exclude(
        prospective_predictions__model=model).select_related("participant").distinct())
    if hand_ids is not None:
        hands = hands.filter(pk__in=hand_ids)
    hands = list(hands)
    annotations = datasets.load_annotations(hand.pk for hand in hands)
    ready = []
    for hand in hands:
        try:
            datasets.loaded_hand_entries(hand, annotations)
        except datasets.NotReady:
            continue
        ready.append(hand)
    return ready


def prospective_predict_queue(*, model: ProspectiveModel, hand: Hand) -> BackgroundJob:
    """Queue the frozen model's prediction of a hand (one job per model and hand while it is queued or running)."""
    from .tasks import predict_hand

    return ops_services.background_job_queue(
        kind=PREDICT_JOB, key=f"model={model.pk}:hand={hand.pk}", params={"model": model.pk, "hand": hand.pk},
        created_by=model.frozen_by, task=predict_hand)


def prospective_clip_annotated(*, clip_id: int) -> None:
    """Hook of the ROI services: once every frame of the hand has a confirmed ROI, queue its prediction."""
    model = prospective_model_active()
    if model is None:
        return
    # While annotation goes on, a frame with no confirmed ROI by anyone settles it in one query.
    if Frame.objects.filter(clip_id=clip_id).exclude(rois__status__in=ANCHORS).exists():
        return
    hand_id = Clip.objects.filter(pk=clip_id).values_list("hand_id", flat=True).first()
    for hand in prospective_hands_eligible(model=model, hand_ids=[hand_id]):
        prospective_predict_queue(model=model, hand=hand)


def input_sha256(entries: list[dict]) -> str:
    """The hash of what the model saw: each frame's image hash and its crop box, in frame order."""
    canonical = [{"frame": e["frame"], "image_sha256": e["image_sha256"], "box": list(e["box"])} for e in entries]
    return hashlib.sha256(json.dumps(canonical, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


@transaction.atomic
def prospective_prediction_store(*, model: ProspectiveModel, hand: Hand, clip, frames: list[dict],
                                 input_hash: str, weights_sha256: str) -> ProspectivePrediction:
    """Store a hand's prediction once; refused when its EPS was entered meanwhile (it would not be blinded)."""
    # The hand's lock orders this against EPS entry (cohort.services.hand_restage takes it too).
    Hand.objects.select_for_update(of=("self",)).get(pk=hand.pk)
    existing = ProspectivePrediction.objects.filter(model=model, hand=hand).first()
    if existing is not None:
        return existing
    if EpsExam.objects.filter(hand=hand).exists():
        raise _invalid("hand", "The hand's EPS was entered before its prediction was stored: it is not a blinded "
                               "prediction, so it is not stored.", "eps_recorded")
    if weights_sha256 != model.weights_sha256:
        raise _invalid("model", "The model's weights changed since it was frozen (their hash differs); freeze the "
                                "model again.", "weights_changed")
    if not frames:
        raise _invalid("clip", "No frame was predicted.", "no_frames")
    probability = sum(f["probability"] for f in frames) / len(frames)
    prediction = ProspectivePrediction(
        model=model, hand=hand, clip=clip, probability=probability, predicted_label=int(probability >= model.threshold),
        frames=frames, input_sha256=input_hash, weights_sha256=weights_sha256, created_at=timezone.now())
    prediction.full_clean()
    prediction.save()
    return prediction


def eps_first_entered_at(hand_id: int):
    """When the hand's first EPS exam was entered, from its audit trail (deleted exams included); None if never."""
    return (EpsExam.history.filter(hand_id=hand_id).order_by("history_date")
            .values_list("history_date", flat=True).first())


def exclusion_of(*, prediction: ProspectivePrediction, eps_first) -> str:
    """Why a scored prediction is left out of the analysis ('' when the audit trail proves the order)."""
    if eps_first <= prediction.model.frozen_at:
        return ProspectiveOutcome.Exclusion.EPS_BEFORE_FREEZE
    if eps_first <= prediction.created_at:
        return ProspectiveOutcome.Exclusion.EPS_BEFORE_PREDICTION
    return ProspectiveOutcome.Exclusion.INCLUDED


@transaction.atomic
def prospective_hand_staged(*, hand: Hand) -> None:
    """Hook of cohort.services.hand_restage when the hand's stage or group changed (the hand is locked): score its
    predictions on the first EPS that stages it control or CTS; a later change is recorded, never rescored."""
    predictions = list(ProspectivePrediction.objects.filter(hand_id=hand.pk).select_related("model"))
    if not predictions:
        return
    exam = EpsExam.objects.filter(hand_id=hand.pk).order_by("-exam_date", "-id").first()
    label = datasets.LABELS.get(hand.group) if exam is not None else None
    now = timezone.now()
    outcomes = {o.prediction_id: o for o in ProspectiveOutcome.objects.filter(prediction__in=predictions)}
    for prediction in predictions:
        outcome = outcomes.get(prediction.pk)
        if outcome is None:
            if label is None:
                continue  # no EPS, or one that leaves the hand to review: not scored yet
            eps_first = eps_first_entered_at(hand.pk)
            ProspectiveOutcome(prediction=prediction, eps_exam=exam, eps_exam_version=exam.version, group=hand.group,
                               label=label, eps_first_entered_at=eps_first,
                               exclusion=exclusion_of(prediction=prediction, eps_first=eps_first),
                               scored_at=now).save()
        elif (exam.pk if exam else None, exam.version if exam else None, hand.group) != (
                outcome.eps_exam_id, outcome.eps_exam_version, outcome.group):
            change = {"eps_exam_id_now": exam.pk if exam else None,
                      "eps_exam_version": exam.version if exam else None, "group": hand.group}
            if not ProspectiveEpsChange.objects.filter(outcome=outcome, **change).exists():
                ProspectiveEpsChange(outcome=outcome, label=label, recorded_at=now, **change).save()
