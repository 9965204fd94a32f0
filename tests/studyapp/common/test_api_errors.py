"""An IntegrityError that no service turned into its own answer is a 409 with a readable message, never a 500."""

import pytest

from studyapp.cohort.models import Participant

pytestmark = pytest.mark.django_db


@pytest.mark.urls("tests.studyapp.common.integrity_urls")
def test_an_unhandled_integrity_error_is_a_conflict_and_nothing_is_half_saved(api_for):
    response = api_for("anonymous").post("/api/duplicate/", {}, format="json")
    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "conflict" and "Reload" in body["detail"]
    assert body["constraint"] == "cohort_participant_study_code_key"
    assert not Participant.objects.filter(study_code="DUP-1").exists()  # the request's writes rolled back
