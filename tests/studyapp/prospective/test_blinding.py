"""Blinding: a prediction's probability and label reach nobody before the hand's EPS is entered (not the
coordinator entering it, not the PI), annotators never; the EPS entry pages and API responses don't carry it."""

import pytest

from studyapp.ops.models import BackgroundJob
from studyapp.prospective.jobs import PREDICT_JOB
from tests.studyapp.prospective.conftest import EPS_CTS, pending_hand, store

pytestmark = pytest.mark.django_db

PROBABILITY = 0.613579  # distinctive, so any rendering of it (0.614, 61.4 %, 0.6136) is found
RENDERINGS = ("0.6135", "0.6136", "0.614", "61.4", "61.36")
EVERYONE = ("coordinator", "annotator", "pi", "admin")


@pytest.fixture
def sealed(frozen, tmp_path):
    hand = pending_hand(tmp_path, code="BLIND")
    hand.prediction = store(frozen, hand, probability=PROBABILITY)
    hand.job = BackgroundJob.objects.get(kind=PREDICT_JOB, params__hand=hand.pk)
    return hand


def _leaks(content: bytes) -> list[str]:
    text = content.decode(errors="replace")
    return [r for r in RENDERINGS if r in text]


def _pages(hand):
    return [f"/cohort/hands/{hand.pk}/", f"/cohort/hands/{hand.pk}/history/", "/cohort/", "/cohort/export.csv",
            f"/clips/{hand.clip.pk}/", f"/clips/{hand.clip.pk}/annotate/", "/clips/worklist/", "/prospective/",
            f"/admin/cohort/hand/{hand.pk}/change/", f"/admin/cohort/hand/{hand.pk}/history/"]


def _api(hand):
    return [f"/api/hands/{hand.pk}/", "/api/hands/", "/api/eps-exams/", "/api/prospective/predictions/",
            "/api/prospective/dashboard/", f"/api/jobs/{hand.job.pk}/", f"/api/clips/{hand.clip.pk}/",
            f"/api/participants/{hand.participant_id}/"]


@pytest.mark.parametrize("role", EVERYONE)
def test_before_eps_no_page_or_api_response_shows_the_prediction(client, users, api_for, sealed, role):
    client.force_login(users[role])
    for url in _pages(sealed):
        response = client.get(url)
        assert not _leaks(response.content), (url, response.status_code)
    api = api_for(role)
    for url in _api(sealed):
        response = api.get(url)
        assert not _leaks(response.content), (url, response.status_code)


@pytest.mark.parametrize("role", ["coordinator", "pi", "admin"])
def test_readers_see_a_sealed_prediction_without_its_value_before_eps(api_for, sealed, role):
    (row,) = api_for(role).get("/api/prospective/predictions/").json()
    assert row["sealed"] is True and row["hand"] == sealed.pk
    assert row["probability"] is None and row["predicted_label"] is None and row["outcome"] is None


def test_no_prospective_row_is_in_the_admin():
    from django.contrib import admin

    from studyapp.prospective import models

    registered = set(admin.site._registry)
    assert not registered & {models.ProspectiveModel, models.ProspectivePrediction, models.ProspectiveOutcome,
                             models.ProspectiveEpsChange}


def test_annotators_never_read_predictions(api_for, client, users, sealed):
    from tests.studyapp.prospective.conftest import enter_eps

    for state in ("before EPS", "after EPS"):
        assert api_for("annotator").get("/api/prospective/predictions/").status_code == 403, state
        assert api_for("annotator").get("/api/prospective/dashboard/").status_code == 403, state
        client.force_login(users["annotator"])
        assert client.get("/prospective/").status_code == 403, state
        enter_eps(sealed, EPS_CTS)


def test_the_eps_entry_responses_carry_no_prediction(api_for, client, users, sealed):
    """The coordinator entering EPS: the form page, the API's answer and the page after saving show nothing."""
    client.force_login(users["coordinator"])
    page = client.get(f"/cohort/hands/{sealed.pk}/")
    assert b"eps" in page.content.lower() and not _leaks(page.content)
    response = api_for("coordinator").post("/api/eps-exams/", {"hand": sealed.pk, "exam_date": "2026-06-01",
                                                                "dml_ms": 5.2, "sncv_m_s": 38.0}, format="json")
    assert response.status_code == 201, response.content
    assert not _leaks(response.content) and "prospective" not in response.content.decode()
    after = client.get(f"/cohort/hands/{sealed.pk}/")
    assert not _leaks(after.content)


def test_after_eps_the_coordinator_and_the_pi_read_the_prediction_and_its_outcome(api_for, client, users, sealed):
    from tests.studyapp.prospective.conftest import enter_eps

    exam = enter_eps(sealed, EPS_CTS, user=users["coordinator"])
    for role in ("coordinator", "pi"):
        (row,) = api_for(role).get("/api/prospective/predictions/").json()
        assert row["sealed"] is False and row["probability"] == pytest.approx(PROBABILITY)
        assert row["outcome"]["label"] == 1 and row["outcome"]["eps_exam"] == exam.pk
    client.force_login(users["pi"])
    assert b"0.614" in client.get("/prospective/").content


def test_a_sealed_prediction_is_not_shown_on_the_pis_dashboard(client, users, sealed):
    client.force_login(users["pi"])
    page = client.get("/prospective/")
    assert page.status_code == 200 and b"sealed until EPS" in page.content and not _leaks(page.content)
    assert page.context["dashboard"]["n_sealed"] == 1
