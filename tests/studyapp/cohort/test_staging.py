import math

import pytest

from studyapp.cohort.staging import (EpsFindings, FindingError, Group, Thresholds, assess_hand, csa_errors,
                                     eps_errors, stage_from_eps)

T = Thresholds()


def eps(dml=None, sncv=None, motor_absent=False, sensory_absent=False):
    return EpsFindings(dml_ms=dml, sncv_m_s=sncv, motor_response_absent=motor_absent,
                       sensory_response_absent=sensory_absent)


@pytest.mark.parametrize("findings, stage", [
    (eps(3.5, 50), 1),
    (eps(4.49, 40.0), 1),      # SNCV exactly at 40 is not slowed
    (eps(4.5, 40.0), 2),       # DML exactly at 4.5 is prolonged
    (eps(6.0, 55), 2),
    (eps(4.5, 39.99), 3),
    (eps(7.2, 30), 3),
    (eps(4.5, None, sensory_absent=True), 4),
    (eps(9.0, None, sensory_absent=True), 4),
    (eps(None, None, motor_absent=True, sensory_absent=True), 5),
])
def test_each_stage_and_both_boundaries(findings, stage):
    assert stage_from_eps(findings, T)[0] == stage


@pytest.mark.parametrize("findings, fragment", [
    (eps(4.0, 35), "slowed"),                                 # normal DML, slowed SNCV
    (eps(4.49, 39.99), "slowed"),
    (eps(4.0, None, sensory_absent=True), "absent sensory"),  # normal DML, absent sensory
    (eps(None, 45, motor_absent=True), "Motor response absent"),
    (eps(None, 45), "DML is missing"),
    (eps(5.0, None), "SNCV is missing"),
    (eps(None, None), "no finding"),  # refused since, but an exam stored before still stages its hand
])
def test_unstageable_combinations_are_never_forced(findings, fragment):
    stage, reason = stage_from_eps(findings, T)
    assert stage is None
    assert fragment in reason


@pytest.mark.parametrize("findings, field", [
    (eps(-0.1, 50), "dml_ms"), (eps(20.01, 50), "dml_ms"), (eps(3.0, -1), "sncv_m_s"),
    (eps(3.0, 100.5), "sncv_m_s"), (eps(math.nan, 50), "dml_ms"),
    (eps(4.0, None, motor_absent=True, sensory_absent=True), "dml_ms"),
    (eps(5.0, 30, sensory_absent=True), "sncv_m_s"),
])
def test_out_of_range_or_contradictory_values_are_refused(findings, field):
    errors = eps_errors(findings)
    assert [e.field for e in errors] == [field]
    with pytest.raises(FindingError) as raised:
        stage_from_eps(findings, T)
    assert raised.value.field == field


def test_an_exam_with_no_finding_is_refused():
    errors = eps_errors(eps())
    assert [(e.field, e.code) for e in errors] == [(None, "no_finding")]
    for one_finding in (eps(dml=4.0), eps(sncv=45), eps(motor_absent=True), eps(sensory_absent=True)):
        assert "no_finding" not in [e.code for e in eps_errors(one_finding)]


def test_range_limits_are_inclusive():
    assert eps_errors(eps(0.0, 0.0)) == []
    assert eps_errors(eps(20.0, 100.0)) == []


@pytest.mark.parametrize("value, ok", [(0.1, True), (100.0, True), (8.2, True), (-1.0, False), (0.0, False),
                                       (100.1, False), (None, False), (math.nan, False)])
def test_csa_range(value, ok):
    assert (csa_errors(value) == []) is ok


def assess(recruitment="patient", exclusion="", findings=None, thresholds=T):
    return assess_hand(recruitment=recruitment, exclusion_reason=exclusion, eps=findings, thresholds=thresholds)


def test_groups():
    assert assess("healthy_volunteer").group is Group.CONTROL
    assert assess("patient").group is Group.NEEDS_REVIEW
    assert assess("patient", findings=eps(3.5, 50)).group is Group.CONTROL
    assert assess("healthy_volunteer", findings=eps(3.5, 50)).group is Group.CONTROL
    for findings in (eps(5, 50), eps(5, 30), eps(5, None, sensory_absent=True),
                     eps(None, None, motor_absent=True, sensory_absent=True)):
        assert assess("patient", findings=findings).group is Group.CTS


def test_conflicting_evidence_needs_review():
    result = assess("healthy_volunteer", findings=eps(5.0, 30))
    assert (result.stage, result.group) == (3, Group.NEEDS_REVIEW)
    assert "Conflicting evidence" in result.reason


def test_unstageable_exam_needs_review_with_readable_reason():
    result = assess("patient", findings=eps(4.0, 30))
    assert (result.stage, result.group) == (None, Group.NEEDS_REVIEW)
    assert "not a stage of the protocol" in result.reason


def test_exclusion_wins_over_everything():
    result = assess("patient", "prior_carpal_tunnel_release", eps(6.0, 30))
    assert result.group is Group.EXCLUDED
    assert result.stage == 3  # the stage is still shown; the hand is just not in the analysis


def test_thresholds_are_used_and_recorded():
    strict = Thresholds(dml_ms=4.2, sncv_m_s=45.0)
    assert assess(findings=eps(4.3, 44), thresholds=T).stage == 1
    result = assess(findings=eps(4.3, 44), thresholds=strict)
    assert result.stage == 3
    assert result.thresholds == strict


def test_unknown_recruitment_is_refused():
    with pytest.raises(ValueError):
        assess("volunteer")
