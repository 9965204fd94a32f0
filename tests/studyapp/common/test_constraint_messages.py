"""Every database constraint of every model speaks to a person, whichever way a row reaches it."""

import pytest
from django.apps import apps
from django.core.exceptions import ValidationError

from studyapp.cohort.models import Hand, Participant
from studyapp.common.concurrency import constraint_messages, refused_as_validation_error
from tests.factories import make_hand

MODELS = [model for model in apps.get_models() if model.__module__.startswith("studyapp.")]
CONSTRAINTS = [(model, constraint) for model in MODELS for constraint in model._meta.constraints]


def test_the_project_has_constraints_to_check():
    assert len(CONSTRAINTS) >= 15


@pytest.mark.parametrize("model, constraint", CONSTRAINTS, ids=[c.name for _, c in CONSTRAINTS])
def test_each_constraint_has_a_human_message_and_code(model, constraint):
    message = str(constraint.get_violation_error_message())
    assert constraint.violation_error_message not in (None, constraint.default_violation_error_message), \
        f"{model.__name__}.{constraint.name}: give it a violation_error_message a person can act on"
    assert constraint.name not in message and "constraint" not in message.lower()
    assert message[:1].isupper() and message.rstrip().endswith(".")
    assert constraint.violation_error_code, f"{constraint.name}: give it a violation_error_code"


@pytest.mark.django_db
def test_a_database_refusal_reads_as_the_constraint_message():
    with pytest.raises(ValidationError) as refused:
        with refused_as_validation_error(Participant):  # bypasses full_clean: only the database checks
            Participant.objects.create(study_code="U-1", sex="female", age=12, recruitment="patient")
    assert refused.value.messages == ["Participants are adults: the age must be from 18 to 110 years."]
    hand = make_hand(side="left")
    with pytest.raises(ValidationError) as refused:
        with refused_as_validation_error(Hand):
            Hand.objects.create(participant=hand.participant, side="left")
    assert refused.value.messages == ["This participant already has a hand on this side."]
    with pytest.raises(ValidationError) as refused:
        with refused_as_validation_error(Participant):
            Participant.objects.create(study_code=hand.participant.study_code, sex="male", age=40,
                                       recruitment="patient")
    assert refused.value.message_dict == {"study_code": ["Participant with this Study code already exists."]}
    assert set(constraint_messages(Participant)) == {"participant_age_adult", "cohort_participant_study_code_key"}


@pytest.mark.django_db
def test_an_under_age_participant_gets_a_sentence_not_a_constraint_name(api_for, client_for):
    body = {"study_code": "U-2", "sex": "female", "age": 12, "recruitment": "patient"}
    response = api_for("coordinator").post("/api/participants/", body, format="json")
    assert response.status_code == 400
    assert response.json() == {"age": ["Participants are adults: enter an age from 18 to 110 years (got 12)."]}
    page = client_for("coordinator").post("/cohort/participants/new/", {**body, "enroll_left": "on"})
    assert "Participants are adults" in page.content.decode() and "participant_age_adult" not in page.content.decode()
