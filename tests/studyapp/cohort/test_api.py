import pytest

from studyapp.cohort.models import EpsExam, Hand, Participant
from tests.factories import make_hand

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(api_for):
    return api_for("coordinator")


def test_enroll_and_stage_through_the_api(api):
    p = api.post("/api/participants/", {"study_code": "A-1", "sex": "female", "age": 61,
                                        "recruitment": "patient"}, format="json")
    assert p.status_code == 201, p.content
    h = api.post("/api/hands/", {"participant": p.json()["id"], "side": "right"}, format="json")
    assert h.status_code == 201 and h.json()["group"] == "needs_review" and h.json()["stage"] is None
    e = api.post("/api/eps-exams/", {"hand": h.json()["id"], "exam_date": "2026-02-01", "dml_ms": 6.1,
                                     "sncv_m_s": None, "sensory_response_absent": True}, format="json")
    assert e.status_code == 201, e.content
    hand = api.get(f"/api/hands/{h.json()['id']}/").json()
    assert (hand["stage"], hand["group"]) == (4, "cts")
    assert set(hand) >= {"id", "participant", "side", "exclusion_reason", "stage", "group", "staging_reason"}


def test_stage_and_group_cannot_be_typed(api):
    hand = make_hand(eps={"dml_ms": 3.5, "sncv_m_s": 50.0})
    response = api.patch(f"/api/hands/{hand.pk}/", {"stage": 5, "group": "cts"}, format="json")
    assert response.status_code == 200
    hand.refresh_from_db()
    assert (hand.stage, hand.group) == (1, "control")


@pytest.mark.parametrize("payload, field", [
    ({"dml_ms": 30, "sncv_m_s": 40}, "dml_ms"),
    ({"dml_ms": 4, "sncv_m_s": -2}, "sncv_m_s"),
    ({"dml_ms": 4, "sncv_m_s": 45, "sensory_response_absent": True}, "sncv_m_s"),
    ({"dml_ms": "abc", "sncv_m_s": 45}, "dml_ms"),
])
def test_bad_eps_gets_a_field_error_and_saves_nothing(api, payload, field):
    hand = make_hand()
    response = api.post("/api/eps-exams/", {"hand": hand.pk, "exam_date": "2026-02-01", **payload}, format="json")
    assert response.status_code == 400
    assert field in response.json()
    assert EpsExam.objects.count() == 0


def test_missing_fields_and_duplicates(api):
    response = api.post("/api/participants/", {"study_code": "B-1"}, format="json")
    assert response.status_code == 400 and {"sex", "age", "recruitment"} <= set(response.json())
    hand = make_hand(side="left", study_code="B-2")
    dup = api.post("/api/participants/", {"study_code": "B-2", "sex": "male", "age": 40,
                                          "recruitment": "patient"}, format="json")
    assert dup.status_code == 400 and "study_code" in dup.json()
    side = api.post("/api/hands/", {"participant": hand.participant_id, "side": "left"}, format="json")
    assert side.status_code == 400
    assert Participant.objects.count() == 1 and Hand.objects.count() == 1


def test_absurd_age_and_csa(api):
    assert api.post("/api/participants/", {"study_code": "C-1", "sex": "male", "age": 300,
                                           "recruitment": "patient"}, format="json").status_code == 400
    hand = make_hand()
    response = api.post("/api/csa-measurements/", {"hand": hand.pk, "csa_mm2": 250}, format="json")
    assert response.status_code == 400 and "csa_mm2" in response.json()


def test_csa_records_who_measured(api, users):
    hand = make_hand()
    response = api.post("/api/csa-measurements/", {"hand": hand.pk, "csa_mm2": 12.5,
                                                   "measured_on": "2026-02-02"}, format="json")
    assert response.status_code == 201
    assert response.json()["measured_by"] == "coord"
    assert response.json()["csa_mm2"] == 12.5


def test_filters_search_and_pagination(api):
    make_hand(recruitment="healthy_volunteer", study_code="HV-1")
    make_hand(eps={"dml_ms": 5.0, "sncv_m_s": 30.0}, study_code="PT-1")
    make_hand(exclusion_reason="prior_wrist_surgery", study_code="PT-2")
    body = api.get("/api/hands/", {"group": "cts"}).json()
    assert body["count"] == 1 and body["results"][0]["stage"] == 3
    assert api.get("/api/hands/", {"included": "false"}).json()["count"] == 1
    assert api.get("/api/hands/", {"stage": 3}).json()["count"] == 1
    assert api.get("/api/hands/", {"search": "HV-"}).json()["results"][0]["study_code"] == "HV-1"
    assert set(api.get("/api/participants/").json()) == {"count", "next", "previous", "results"}


def test_hand_cannot_move_to_another_participant(api):
    a, b = make_hand(study_code="M-1"), make_hand(study_code="M-2")
    response = api.patch(f"/api/hands/{a.pk}/", {"participant": b.participant_id}, format="json")
    assert response.status_code == 400


def test_deleting_a_participant_with_hands_is_a_conflict(api):
    hand = make_hand()
    response = api.delete(f"/api/participants/{hand.participant_id}/")
    assert response.status_code == 409 and "hands" in response.json()["detail"]


def test_schema_and_docs(api):
    schema = api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert {"/api/participants/", "/api/hands/", "/api/eps-exams/", "/api/csa-measurements/",
            "/api/cohort/flow/"} <= set(paths)
    assert api.get("/api/docs/").status_code == 200


def test_token_auth(users, client):
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    token = Token.objects.create(user=users["pi"])
    api = APIClient(HTTP_AUTHORIZATION=f"Token {token.key}")
    assert api.get("/api/hands/").status_code == 200
    assert APIClient(HTTP_AUTHORIZATION="Token wrong").get("/api/hands/").status_code == 401


def test_an_age_of_12_gets_a_readable_message_under_age(api):
    response = api.post("/api/participants/", {"study_code": "Y-1", "sex": "male", "age": 12,
                                               "recruitment": "patient"}, format="json")
    assert response.status_code == 400
    assert response.json() == {"age": ["Participants are adults: enter an age from 18 to 110 years (got 12)."]}
    assert Participant.objects.count() == 0


@pytest.mark.parametrize("code", ["P 01", "P/01", "P-01;", "Dupont, Marie", "é-1"])
def test_study_code_outside_its_format_is_refused(api, code):
    response = api.post("/api/participants/", {"study_code": code, "sex": "male", "age": 40,
                                               "recruitment": "patient"}, format="json")
    assert response.status_code == 400
    assert response.json()["study_code"] == [
        "Use only letters, digits, '-' or '_' in a study code (no spaces or other characters)."]
    assert Participant.objects.count() == 0


def test_an_exam_with_only_a_date_is_refused_by_the_api(api):
    hand = make_hand()
    response = api.post("/api/eps-exams/", {"hand": hand.pk, "exam_date": "2026-02-01"}, format="json")
    assert response.status_code == 400
    assert "an exam with only a date has no finding" in str(response.json())
    assert EpsExam.objects.count() == 0
