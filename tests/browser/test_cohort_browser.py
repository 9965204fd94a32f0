"""A coordinator in a real browser on the cohort pages: dates survive an untouched save, EPS exams are corrected
and removed from the hand page. Checked in the ORM."""

import datetime as dt
import os

import pytest
from django.utils import timezone

from studyapp.cohort.models import Participant
from tests.factories import UserFactory, make_hand
from tests.browser.conftest import log_in


pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]


@pytest.fixture
def coordinator():
    return UserFactory(username="cora", role="coordinator")


def test_saving_a_participant_without_touching_the_date_keeps_it(live_server, page, coordinator):
    base = live_server.url
    hand = make_hand(study_code="DATE-1", age=52, enrolled_on=dt.date(2026, 11, 29))
    edit_url = f"/cohort/participants/{hand.participant_id}/edit/"
    log_in(page, base, coordinator, edit_url)

    # The browser shows the stored date (it reads ISO only; 29/11/2026 would show blank).
    assert page.input_value("#id_enrolled_on") == "2026-11-29"
    page.fill("#id_age", "53")
    page.click("main form button[type=submit]")
    page.wait_for_url(f"{base}/cohort/hands/{hand.pk}/")
    assert "Saved DATE-1" in page.inner_text(".messages")

    participant = Participant.objects.get(pk=hand.participant_id)
    assert (participant.age, participant.enrolled_on) == (53, dt.date(2026, 11, 29))


def test_new_enrolment_and_hand_forms_are_prefilled_with_today(live_server, page, coordinator):
    base = live_server.url
    today = timezone.localdate().isoformat()
    log_in(page, base, coordinator, "/cohort/participants/new/")
    assert page.input_value("#id_enrolled_on") == today

    page.fill("#id_study_code", "DATE-2")
    page.select_option("#id_sex", "female")
    page.fill("#id_age", "47")
    page.select_option("#id_recruitment", "patient")
    page.click("main form button[type=submit]")
    page.wait_for_url(f"{base}/cohort/hands/*/")
    assert Participant.objects.get(study_code="DATE-2").enrolled_on.isoformat() == today

    # The hand page's exam and CSA forms start at today too.
    assert page.input_value("#id_exam_date") == today
    assert page.input_value("#id_measured_on") == today


def test_correct_then_remove_an_exam_from_the_hand_page(live_server, page, coordinator):
    base = live_server.url
    hand = make_hand(study_code="EPS-1", eps={"dml_ms": 5.2, "sncv_m_s": 36.0, "exam_date": dt.date(2026, 2, 1)})
    exam = hand.eps_exams.get()
    log_in(page, base, coordinator, f"/cohort/hands/{hand.pk}/")
    assert page.inner_text("#hand-group") == "CTS"

    page.click(f'tr[data-exam="{exam.pk}"] >> text=Correct')
    page.wait_for_url(f"{base}/cohort/hands/{hand.pk}/eps/{exam.pk}/edit/")
    assert page.input_value("#id_exam_date") == "2026-02-01"
    page.fill("#id_dml_ms", "3.9")
    page.fill("#id_sncv_m_s", "48")
    page.wait_for_selector("#stage-preview >> text=Stage 1")  # the live preview, before saving
    page.click("main form button[type=submit]")
    page.wait_for_url(f"{base}/cohort/hands/{hand.pk}/")
    assert page.inner_text("#hand-group") == "Control"
    hand.refresh_from_db()
    assert (hand.stage, hand.group, hand.eps_exams.get().dml_ms) == (1, "control", 3.9)

    page.click(f'tr[data-exam="{exam.pk}"] >> text=Remove')
    page.wait_for_url(f"{base}/cohort/hands/{hand.pk}/eps/{exam.pk}/delete/")
    assert "The hand then has no EPS exam" in page.inner_text("main")
    assert hand.eps_exams.count() == 1  # asking removes nothing
    page.click("#confirm-remove")
    page.wait_for_url(f"{base}/cohort/hands/{hand.pk}/")
    assert "No EPS exam yet" in page.inner_text("main")
    assert page.inner_text("#hand-group") == "Needs review"
    assert hand.eps_exams.count() == 0

    page.goto(f"{base}/cohort/hands/{hand.pk}/history/")
    history = page.inner_text("main")
    assert "EPS exam of 2026-02-01 deleted" in history and "cora" in history


def test_a_save_on_an_outdated_page_shows_what_changed(live_server, page, coordinator, tmp_path):
    from studyapp.cohort import services

    base = live_server.url
    hand = make_hand(study_code="RACE-1", age=52, sex="female")
    edit_url = f"/cohort/participants/{hand.participant_id}/edit/"
    log_in(page, base, coordinator, edit_url)
    services.participant_update(participant=hand.participant, expected_version=1, age=60)  # someone else, meanwhile
    page.select_option("#id_sex", "male")
    page.click("main form button[type=submit]")
    assert "was changed by someone else since you loaded it" in page.inner_text("main form .errorlist")
    assert "Changed meanwhile: now 60 (was 52" in page.inner_text("main form")
    page.screenshot(path=str(os.environ.get("CTS_SCREENSHOT_DIR", tmp_path)) + "/stale_participant.png",
                    full_page=True)
    assert Participant.objects.get(pk=hand.participant_id).sex == "female"
    page.fill("#id_age", "60")
    page.click("main form button[type=submit]")  # the page now carries version 2: this save applies
    page.wait_for_url(f"{base}/cohort/hands/{hand.pk}/")
    participant = Participant.objects.get(pk=hand.participant_id)
    assert (participant.age, participant.sex, participant.version) == (60, "male", 3)
