"""Writes to the cohort. Every write validates fully, runs in one transaction and re-derives staging.

Audit rows come from django-simple-history on each model; the acting user is taken from the request
(HistoryRequestMiddleware) or, outside a request, from `history_user`.

Edits are optimistic: an update names the `expected_version` its author loaded (None: no check) and writes
only the fields it is given, on the row locked and re-read, so concurrent edits never overwrite each other.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction
from django.utils import timezone

from studyapp.common.concurrency import lock_current, refused_as_validation_error, save_fields
from studyapp.protocol.models import StudySettings

from . import staging
from .models import CsaMeasurement, EpsExam, Hand, Participant

PARTICIPANT_FIELDS = ("study_code", "sex", "age", "recruitment", "enrolled_on")
HAND_FIELDS = ("side", "exclusion_reason", "exclusion_detail")
EPS_FIELDS = ("exam_date", "dml_ms", "sncv_m_s", "motor_response_absent", "sensory_response_absent")
CSA_FIELDS = ("csa_mm2", "site", "measured_on", "measured_by", "method")


def _save(instance, *, history_user=None):
    instance.full_clean()
    if history_user is not None:
        instance._history_user = history_user
    instance.save()
    return instance


def _update(model, pk, *, expected_version, fields: dict, allowed: Iterable[str], history_user=None):
    current = lock_current(model, pk, expected_version=expected_version, fields=allowed)
    if not fields:
        return current
    _assign(current, fields, allowed)
    return save_fields(current, fields, history_user=history_user)


def _assign(instance, fields: dict, allowed: Iterable[str]):
    unknown = set(fields) - set(allowed)
    if unknown:
        raise TypeError(f"cannot set {', '.join(sorted(unknown))} on {type(instance).__name__}")
    for name, value in fields.items():
        setattr(instance, name, value)


def hand_assessment(*, hand: Hand, thresholds: staging.Thresholds,
                    without_exam: EpsExam | None = None) -> staging.Assessment:
    """Derive a hand's stage and group from its current data, or as it would be without one exam (no write)."""
    exams = hand.eps_exams.order_by("-exam_date", "-id")
    exam = (exams.exclude(pk=without_exam.pk) if without_exam else exams).first()
    return staging.assess_hand(
        recruitment=hand.participant.recruitment,
        exclusion_reason=hand.exclusion_reason,
        eps=exam.findings if exam else None,
        thresholds=thresholds,
    )


@transaction.atomic
def hand_restage(*, hand: Hand, thresholds: staging.Thresholds | None = None, history_user=None) -> Hand:
    """Store the derived stage and group with the thresholds used; a no-op write is skipped."""
    thresholds = thresholds or StudySettings.current().thresholds
    # Re-read under a lock: the derivation and its audit row must see a concurrent edit of the hand. NO KEY
    # UPDATE, as a plain UPDATE takes: two exams added at once to one hand must not deadlock.
    locked = Hand.objects.select_for_update(of=("self",), no_key=True).select_related("participant")
    given, hand = hand, locked.get(pk=hand.pk)
    result = hand_assessment(hand=hand, thresholds=thresholds)
    derived = {
        "stage": result.stage,
        "group": result.group.value,
        "staging_reason": result.reason,
        "staged_dml_threshold_ms": thresholds.dml_ms,
        "staged_sncv_threshold_m_s": thresholds.sncv_m_s,
    }
    if all(getattr(hand, name) == value for name, value in derived.items()):
        return hand
    derived["staged_at"] = timezone.now()
    for name, value in derived.items():
        setattr(hand, name, value)
        setattr(given, name, value)  # the caller's copy shows the new stage too
    if history_user is not None:
        hand._history_user = history_user
    # Derived values are not an edit of the hand: its version stays, so a coordinator's form is not stale.
    hand.save(update_fields=list(derived))
    # A blinded prospective prediction is scored by the EPS that first stages its hand, under this lock.
    from studyapp.prospective.services import prospective_hand_staged  # it reads the cohort: imported late

    prospective_hand_staged(hand=hand)
    return hand


@transaction.atomic
def participant_create(*, history_user=None, **fields) -> Participant:
    participant = Participant()
    _assign(participant, fields, PARTICIPANT_FIELDS)
    with refused_as_validation_error(Participant):  # two clients enrolling one code at the same moment
        return _save(participant, history_user=history_user)


@transaction.atomic
def participant_update(*, participant: Participant, expected_version: int | None = None, history_user=None,
                       **fields) -> Participant:
    participant = _update(Participant, participant.pk, expected_version=expected_version, fields=fields,
                          allowed=PARTICIPANT_FIELDS, history_user=history_user)
    # Recruitment decides the group of a hand without EPS and flags conflicting evidence.
    for hand in participant.hands.all():
        hand_restage(hand=hand, history_user=history_user)
    return participant


@transaction.atomic
def participant_delete(*, participant: Participant) -> None:
    participant.delete()  # PROTECT refuses while hands exist; the history keeps the deleted row


@transaction.atomic
def hand_create(*, participant: Participant, history_user=None, **fields) -> Hand:
    hand = Hand(participant=participant)
    _assign(hand, fields, HAND_FIELDS)
    with refused_as_validation_error(Hand):  # two clients enrolling one side at the same moment
        _save(hand, history_user=history_user)
    return hand_restage(hand=hand, history_user=history_user)


@transaction.atomic
def hand_update(*, hand: Hand, expected_version: int | None = None, history_user=None, **fields) -> Hand:
    hand = _update(Hand, hand.pk, expected_version=expected_version, fields=fields, allowed=HAND_FIELDS,
                   history_user=history_user)
    return hand_restage(hand=hand, history_user=history_user)


@transaction.atomic
def hand_delete(*, hand: Hand) -> None:
    hand.delete()


@transaction.atomic
def eps_exam_create(*, hand: Hand, history_user=None, **fields) -> EpsExam:
    exam = EpsExam(hand=hand)
    _assign(exam, fields, EPS_FIELDS)
    _save(exam, history_user=history_user)
    hand_restage(hand=hand, history_user=history_user)
    return exam


@transaction.atomic
def eps_exam_update(*, exam: EpsExam, expected_version: int | None = None, history_user=None,
                    **fields) -> EpsExam:
    exam = _update(EpsExam, exam.pk, expected_version=expected_version, fields=fields, allowed=EPS_FIELDS,
                   history_user=history_user)
    hand_restage(hand=exam.hand, history_user=history_user)
    return exam


@transaction.atomic
def eps_exam_delete(*, exam: EpsExam, history_user=None) -> None:
    hand = exam.hand
    if history_user is not None:
        exam._history_user = history_user
    exam.delete()  # the history keeps the deleted exam
    hand_restage(hand=hand, history_user=history_user)


@transaction.atomic
def csa_measurement_create(*, hand: Hand, history_user=None, **fields) -> CsaMeasurement:
    measurement = CsaMeasurement(hand=hand)
    _assign(measurement, fields, CSA_FIELDS)
    return _save(measurement, history_user=history_user)


@transaction.atomic
def csa_measurement_update(*, measurement: CsaMeasurement, expected_version: int | None = None, history_user=None,
                           **fields) -> CsaMeasurement:
    return _update(CsaMeasurement, measurement.pk, expected_version=expected_version, fields=fields,
                   allowed=CSA_FIELDS, history_user=history_user)


@transaction.atomic
def csa_measurement_delete(*, measurement: CsaMeasurement) -> None:
    measurement.delete()


# Who the raters are and what they see: read by annotations and experiments, set with the protocol.
RATER_SETTINGS = ("primary_rater_rule", "primary_rater", "raters_blinded", "adjudication_iou_threshold",
                  "adjudication_csa_difference_mm2")


@transaction.atomic
def study_settings_update(*, history_user=None, **fields) -> StudySettings:
    """Change protocol settings; existing hands keep their stage and are flagged for re-staging."""
    study_settings = StudySettings.current()
    _assign(study_settings, fields, ("dml_threshold_ms", "sncv_threshold_m_s", "frames_per_clip", "crop_size_mm",
                                     "csa_baseline_method", "explain_frames_occlusion", "explain_frames_lime",
                                     "explain_frames_gradcam", "perineural_ring_mm")
            + RATER_SETTINGS)
    return _save(study_settings, history_user=history_user)


@transaction.atomic
def hands_restage(*, hands: Iterable[Hand], history_user=None) -> int:
    """Re-stage the given hands with the current thresholds; returns how many changed."""
    thresholds = StudySettings.current().thresholds
    changed = 0
    for hand in hands:
        staged_at = hand.staged_at
        restaged = hand_restage(hand=hand, thresholds=thresholds, history_user=history_user)
        changed += restaged.staged_at != staged_at  # hand_restage only writes (and stamps) a change
    return changed
