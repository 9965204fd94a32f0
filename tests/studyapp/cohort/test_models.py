import pytest
from django.core.exceptions import ValidationError
from django.db import models

from studyapp.cohort import services
from studyapp.cohort.models import CsaMeasurement, EpsExam, Hand, Participant
from studyapp.protocol.models import StudySettings

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("model", [Participant, Hand, EpsExam, CsaMeasurement, StudySettings])
def test_every_constraint_has_a_readable_message_and_a_code(model):
    for constraint in model._meta.constraints:
        assert constraint.violation_error_message != constraint.default_violation_error_message, constraint.name
        assert constraint.violation_error_code, constraint.name


def test_the_age_constraint_reads_as_words_when_it_trips():
    participant = Participant(study_code="A-1", sex="male", age=12, recruitment="patient")
    with pytest.raises(ValidationError) as raised:
        participant.validate_constraints()
    assert raised.value.messages == ["Participants are adults: the age must be from 18 to 110 years."]
    assert raised.value.error_dict["__all__"][0].code == "age_out_of_range"


@pytest.mark.parametrize("age", [12, 17, 111])
def test_an_age_outside_adulthood_lands_on_the_age_field(age):
    with pytest.raises(ValidationError) as raised:
        services.participant_create(study_code="A-1", sex="male", age=age, recruitment="patient")
    assert set(raised.value.error_dict) == {"age"}
    assert raised.value.error_dict["age"][0].code == "age_out_of_range"


@pytest.mark.parametrize("code, valid", [("CTS-0001", True), ("DEMO-001", True), ("ab_9", True), ("X1", True),
                                         ("P 01", False), ("P.01", False), ("", False), ("ü-1", False),
                                         ("P-01\n", False)])
def test_study_code_format(code, valid):
    participant = Participant(study_code=code, sex="male", age=40, recruitment="patient")
    if valid:
        participant.full_clean()
        return
    with pytest.raises(ValidationError) as raised:
        participant.full_clean()
    assert "study_code" in raised.value.error_dict
