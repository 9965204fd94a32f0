import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.db.models import ProtectedError

from studyapp.cohort import selectors, services
from studyapp.cohort.models import CsaMeasurement, EpsExam, Hand, Participant
from tests.factories import ParticipantFactory, make_hand

pytestmark = pytest.mark.django_db


def test_entering_eps_derives_stage_group_and_thresholds():
    hand = make_hand(eps={"dml_ms": 5.1, "sncv_m_s": 35.0})
    assert (hand.stage, hand.group) == (3, "cts")
    assert (hand.staged_dml_threshold_ms, hand.staged_sncv_threshold_m_s) == (4.5, 40.0)
    assert "SNCV 35 m/s < 40 m/s" in hand.staging_reason


def test_latest_exam_is_current_and_history_is_kept():
    hand = make_hand(eps={"dml_ms": 5.1, "sncv_m_s": 35.0, "exam_date": dt.date(2026, 1, 1)})
    services.eps_exam_create(hand=hand, exam_date=dt.date(2026, 3, 1), dml_ms=3.9, sncv_m_s=48.0)
    hand.refresh_from_db()
    assert (hand.stage, hand.group) == (1, "control")
    assert hand.eps_exams.count() == 2
    services.eps_exam_delete(exam=hand.eps_exams.get(exam_date=dt.date(2026, 3, 1)))
    hand.refresh_from_db()
    assert hand.stage == 3


def test_recruitment_change_restages_hands():
    hand = make_hand(recruitment="patient", eps={"dml_ms": 5.0, "sncv_m_s": 45.0})
    assert hand.group == "cts"
    services.participant_update(participant=hand.participant, recruitment="healthy_volunteer")
    hand.refresh_from_db()
    assert hand.group == "needs_review"


def test_exclusion_makes_group_excluded_and_other_needs_detail():
    hand = make_hand(eps={"dml_ms": 5.0, "sncv_m_s": 45.0})
    services.hand_update(hand=hand, exclusion_reason="prior_wrist_surgery")
    assert Hand.objects.get(pk=hand.pk).group == "excluded"
    with pytest.raises(ValidationError) as raised:
        services.hand_update(hand=Hand.objects.get(pk=hand.pk), exclusion_reason="other", exclusion_detail=" ")
    assert "exclusion_detail" in raised.value.message_dict
    assert Hand.objects.get(pk=hand.pk).exclusion_reason == "prior_wrist_surgery"


@pytest.mark.parametrize("fields, field", [
    ({"dml_ms": 25.0, "sncv_m_s": 40.0}, "dml_ms"),
    ({"dml_ms": 4.0, "sncv_m_s": 140.0}, "sncv_m_s"),
    ({"dml_ms": 4.0, "sncv_m_s": 45.0, "motor_response_absent": True}, "dml_ms"),
])
def test_absurd_eps_is_refused_and_nothing_saved(fields, field):
    hand = make_hand()
    with pytest.raises(ValidationError) as raised:
        services.eps_exam_create(hand=hand, exam_date=dt.date(2026, 2, 1), **fields)
    assert field in raised.value.message_dict
    assert EpsExam.objects.count() == 0
    assert Hand.objects.get(pk=hand.pk).group == "needs_review"


@pytest.mark.parametrize("csa", [-3.0, 0.0, 120.0])
def test_absurd_csa_is_refused(csa):
    hand = make_hand()
    with pytest.raises(ValidationError):
        services.csa_measurement_create(hand=hand, csa_mm2=csa)
    assert CsaMeasurement.objects.count() == 0


def test_duplicates_are_refused():
    ParticipantFactory(study_code="CTS-1")
    with pytest.raises(ValidationError) as raised:
        services.participant_create(study_code="CTS-1", sex="male", age=40, recruitment="patient")
    assert "study_code" in raised.value.message_dict
    hand = make_hand(side="left")
    with pytest.raises(ValidationError):
        services.hand_create(participant=hand.participant, side="left")
    assert Participant.objects.count() == 2 and Hand.objects.count() == 1


def test_missing_fields_are_refused():
    with pytest.raises(ValidationError) as raised:
        services.participant_create(study_code="X1", sex="", age=None, recruitment="patient")
    assert {"sex", "age"} <= set(raised.value.message_dict)


def test_deleting_a_participant_with_hands_is_refused():
    hand = make_hand()
    with pytest.raises(ProtectedError):
        services.participant_delete(participant=hand.participant)


def test_threshold_change_flags_instead_of_relabelling():
    hand = make_hand(eps={"dml_ms": 4.3, "sncv_m_s": 44.0})
    assert hand.stage == 1
    services.study_settings_update(dml_threshold_ms=4.2, sncv_threshold_m_s=45.0)
    hand.refresh_from_db()
    assert hand.stage == 1 and hand.group == "control"  # unchanged until re-staged
    assert selectors.hand_needs_restaging(hand)
    assert list(selectors.hand_list(needs_restaging=True)) == [hand]
    assert services.hands_restage(hands=selectors.hand_list(needs_restaging=True)) == 1
    hand.refresh_from_db()
    assert (hand.stage, hand.group, hand.staged_dml_threshold_ms) == (3, "cts", 4.2)
    assert not selectors.hand_needs_restaging(hand)
    assert selectors.hand_list(needs_restaging=True).count() == 0


def test_cohort_flow_counts():
    make_hand(recruitment="healthy_volunteer")
    make_hand(eps={"dml_ms": 5.0, "sncv_m_s": 45.0})
    make_hand(eps={"dml_ms": 6.0, "sncv_m_s": None, "sensory_response_absent": True})
    make_hand(exclusion_reason="prior_wrist_surgery")
    flow = selectors.cohort_flow()
    assert flow["screened"] == {"participants": 4, "hands": 4}
    assert flow["excluded"] == {"total": 1, "by_reason": {"prior_wrist_surgery": 1,
                                                          "prior_carpal_tunnel_release": 0, "other": 0}}
    assert flow["included"]["by_group"] == {"control": 1, "cts": 2, "needs_review": 0}
    assert flow["stages"] == {"1": 0, "2": 1, "3": 0, "4": 1, "5": 0}
