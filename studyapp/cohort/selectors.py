"""Reads of the cohort for views, the API and exports."""

from __future__ import annotations

from django.db.models import Count, Q, QuerySet

from studyapp.protocol.models import StudySettings

from .models import CsaMeasurement, Hand, Participant
from .staging import Thresholds


DIAGNOSIS_PERM = "cohort.view_diagnosis"


def sees_diagnosis(user) -> bool:
    """Whether the user may see hands' group, stage, staging, EPS, recruitment, eligibility and others' CSA."""
    return user.has_perm(DIAGNOSIS_PERM)


def csa_measurements_visible(measurements: QuerySet[CsaMeasurement], *, user) -> QuerySet[CsaMeasurement]:
    """A blinded rater sees only the CSA values they measured: the scanner's and other raters' are findings."""
    return measurements if sees_diagnosis(user) else measurements.filter(measured_by=user)


def hand_list(*, group: str | None = None, stage: int | None = None, included: bool | None = None,
              search: str | None = None, needs_restaging: bool | None = None) -> QuerySet[Hand]:
    hands = Hand.objects.select_related("participant").order_by("participant__study_code", "side")
    if group:
        hands = hands.filter(group=group)
    if stage:
        hands = hands.filter(stage=stage)
    if included is not None:
        hands = hands.filter(exclusion_reason="") if included else hands.exclude(exclusion_reason="")
    if search:
        hands = hands.filter(participant__study_code__icontains=search.strip())
    if needs_restaging is not None:
        outdated = outdated_hands_q()
        hands = hands.filter(outdated) if needs_restaging else hands.exclude(outdated)
    return hands


def outdated_hands_q() -> Q:
    """Hands staged with thresholds other than the current study settings."""
    current = StudySettings.current()
    return (Q(staged_dml_threshold_ms__isnull=True)
            | ~Q(staged_dml_threshold_ms=current.dml_threshold_ms)
            | ~Q(staged_sncv_threshold_m_s=current.sncv_threshold_m_s))


def hand_needs_restaging(hand: Hand, *, current: Thresholds | None = None) -> bool:
    """Whether the hand was staged with thresholds other than `current` (default: the study settings)."""
    return hand.staged_thresholds != (current or StudySettings.current().thresholds)


def latest_inlet_csa(*, hand_ids, method: str) -> dict[int, float]:
    """Each hand's latest carpal-tunnel-inlet CSA measured by `method` (hands without one are absent)."""
    values = {}
    for hand_id, csa in (CsaMeasurement.objects.filter(hand_id__in=hand_ids, method=method,
                                                       site=CsaMeasurement.Site.CARPAL_TUNNEL_INLET)
                         .order_by("hand_id", "measured_on", "id").values_list("hand_id", "csa_mm2")):
        values[hand_id] = csa  # ordered, so the latest wins
    return values


def cohort_flow() -> dict:
    """Counts behind the participant-flow diagram: screened, excluded by reason, included per group."""
    hands = Hand.objects.all()
    by_reason = dict(hands.exclude(exclusion_reason="").values_list("exclusion_reason")
                     .annotate(n=Count("id")).values_list("exclusion_reason", "n"))
    included = hands.filter(exclusion_reason="")
    by_group = dict(included.values_list("group").annotate(n=Count("id")).values_list("group", "n"))
    by_stage = dict(included.exclude(stage=None).values_list("stage").annotate(n=Count("id"))
                    .values_list("stage", "n"))
    return {
        "screened": {"participants": Participant.objects.count(), "hands": hands.count()},
        "excluded": {"total": sum(by_reason.values()),
                     "by_reason": {reason: by_reason.get(reason, 0)
                                   for reason in Hand.ExclusionReason.values if reason}},
        "included": {"total": included.count(),
                     "by_group": {group: by_group.get(group, 0)
                                  for group in Hand.GroupChoice.values if group != "excluded"}},
        "stages": {str(stage): by_stage.get(stage, 0) for stage in range(1, 6)},
        "unstaged_included": included.filter(stage=None).count(),
    }
