import datetime as dt

import pytest

from studyapp.cohort import services
from studyapp.cohort.models import EpsExam, Hand, Participant
from tests.factories import RATER_FORM, make_hand

pytestmark = pytest.mark.django_db


def test_login_page_and_redirect(client, users):
    assert client.get("/").status_code == 302
    response = client.post("/accounts/login/", {"username": "coord", "password": "pw-for-tests-1"})
    assert response.status_code == 302
    assert client.get("/cohort/").status_code == 200


def test_enroll_then_enter_eps_and_see_the_stage(client_for):
    client = client_for("coordinator")
    response = client.post("/cohort/participants/new/", {
        "study_code": "W-1", "sex": "female", "age": "58", "recruitment": "patient",
        "enrolled_on": "2026-01-10", "enroll_left": "on", "enroll_right": "on"})
    assert response.status_code == 302
    participant = Participant.objects.get(study_code="W-1")
    assert sorted(participant.hands.values_list("side", flat=True)) == ["left", "right"]
    hand = participant.hands.get(side="right")
    assert response["Location"].endswith(f"/cohort/hands/{participant.hands.get(side='left').pk}/")
    response = client.post(f"/cohort/hands/{hand.pk}/eps/", {
        "exam_date": "2026-02-01", "dml_ms": "5.2", "sncv_m_s": "36"}, follow=True)
    assert response.status_code == 200
    page = response.content.decode()
    assert "Stage 3" in page and "CTS" in page
    hand.refresh_from_db()
    assert (hand.stage, hand.group) == (3, "cts")


def test_live_preview_uses_the_staging_function(client_for):
    hand = make_hand()
    client = client_for("coordinator")
    page = client.post(f"/cohort/hands/{hand.pk}/eps/preview/", {"dml_ms": "4.5", "sncv_m_s": "40"}).content.decode()
    assert "Stage 2" in page and 'data-group="cts"' in page
    page = client.post(f"/cohort/hands/{hand.pk}/eps/preview/", {"dml_ms": "4.0", "sncv_m_s": "30"}).content.decode()
    assert 'data-group="needs_review"' in page and "not a stage of the protocol" in page
    page = client.post(f"/cohort/hands/{hand.pk}/eps/preview/", {"dml_ms": "44", "sncv_m_s": "30"}).content.decode()
    assert "Can't stage" in page and "between 0 and 20" in page
    assert EpsExam.objects.count() == 0  # a preview never saves


def test_validation_errors_show_next_to_the_field_and_keep_the_input(client_for):
    hand = make_hand()
    client = client_for("coordinator")
    response = client.post(f"/cohort/hands/{hand.pk}/eps/", {"exam_date": "2026-02-01", "dml_ms": "27.5",
                                                             "sncv_m_s": "41.5"})
    assert response.status_code == 400
    page = response.content.decode()
    assert 'id="id_dml_ms_errors"' in page and "between 0 and 20" in page
    assert 'value="27.5"' in page and 'value="41.5"' in page
    assert EpsExam.objects.count() == 0


def test_duplicate_study_code_in_the_form(client_for):
    make_hand(study_code="DUP-1")
    response = client_for("coordinator").post("/cohort/participants/new/", {
        "study_code": "DUP-1", "sex": "male", "age": "44", "recruitment": "patient", "enrolled_on": "2026-01-01",
        "enroll_left": "on"})
    assert response.status_code == 200
    assert 'id="id_study_code_errors"' in response.content.decode()
    assert Participant.objects.count() == 1


def test_other_exclusion_needs_detail_in_the_form(client_for):
    hand = make_hand()
    response = client_for("coordinator").post(f"/cohort/hands/{hand.pk}/eligibility/",
                                              {"exclusion_reason": "other", "exclusion_detail": ""})
    assert response.status_code == 400 and "Describe the reason" in response.content.decode()
    assert Hand.objects.get(pk=hand.pk).exclusion_reason == ""


def test_cohort_list_filters(client_for):
    make_hand(recruitment="healthy_volunteer", study_code="HV-9")
    make_hand(eps={"dml_ms": 5.0, "sncv_m_s": 30.0}, study_code="PT-9")
    client = client_for("pi")
    assert "PT-9" in client.get("/cohort/", {"group": "cts"}).content.decode()
    assert "PT-9" not in client.get("/cohort/", {"group": "control"}).content.decode()
    assert "HV-9" in client.get("/cohort/", {"q": "hv-"}).content.decode()
    assert "PT-9" in client.get("/cohort/", {"stage": "3"}).content.decode()


def test_annotator_hand_page_hides_demographics(client_for):
    hand = make_hand(age=77)
    page = client_for("annotator").get(f"/cohort/hands/{hand.pk}/").content.decode()
    assert "77 y" not in page and "Save exam" not in page
    assert "77 y" in client_for("pi").get(f"/cohort/hands/{hand.pk}/").content.decode()


def test_settings_change_flags_hands_and_restage_button(client_for):
    hand = make_hand(eps={"dml_ms": 4.3, "sncv_m_s": 44.0})
    pi = client_for("pi")
    response = pi.post("/cohort/settings/", {"dml_threshold_ms": "4.2", "sncv_threshold_m_s": "40",
                                             "frames_per_clip": "100", "crop_size_mm": "15",
                                             "csa_baseline_method": "manual", **RATER_FORM}, follow=True)
    assert "flagged for re-staging" in response.content.decode()
    assert "Re-stage 1 hand" in pi.get("/cohort/").content.decode()
    pi.post("/cohort/restage/")
    hand.refresh_from_db()
    assert hand.stage == 2


@pytest.mark.parametrize("fields, field, message", [
    ({"age": "12"}, "age", "Participants are adults: enter an age from 18 to 110 years (got 12)."),
    ({"study_code": "P 12"}, "study_code", "Use only letters, digits, &#x27;-&#x27; or &#x27;_&#x27; in a study code"),
])
def test_participant_form_shows_a_readable_message_on_the_field(client_for, fields, field, message):
    data = {"study_code": "V-1", "sex": "female", "age": "50", "recruitment": "patient",
            "enrolled_on": "2026-01-10", "enroll_left": "on", **fields}
    response = client_for("coordinator").post("/cohort/participants/new/", data)
    assert response.status_code == 200
    page = response.content.decode()
    errors = page.split(f'id="id_{field}_errors"')[1].split("</ul>")[0]
    assert message in errors
    assert "Constraint" not in page and "violated" not in page
    assert Participant.objects.count() == 0


def test_field_labels_are_words(client_for):
    page = client_for("pi").get("/cohort/settings/").content.decode()
    for label in ("DML threshold (ms)", "SNCV threshold (m/s)", "Frames per clip", "Crop size (mm)"):
        assert label in page
    hand = make_hand()
    page = client_for("coordinator").get(f"/cohort/hands/{hand.pk}/").content.decode()
    for label in ("Exam date", "DML (ms)", "SNCV (m/s)", "Motor response absent", "Sensory response absent",
                  "CSA (mm²)", "Measured on", "Exclusion reason"):
        assert label in page


def test_an_exam_with_only_a_date_is_refused_in_the_form(client_for):
    hand = make_hand()
    response = client_for("coordinator").post(f"/cohort/hands/{hand.pk}/eps/", {"exam_date": "2026-02-01"})
    assert response.status_code == 400
    assert "an exam with only a date has no finding" in response.content.decode()
    assert EpsExam.objects.count() == 0


def test_correct_an_exam_from_the_hand_page(client_for):
    hand = make_hand(eps={"dml_ms": 5.2, "sncv_m_s": 36.0})
    exam = hand.eps_exams.get()
    client = client_for("coordinator")
    page = client.get(f"/cohort/hands/{hand.pk}/").content.decode()
    assert f'href="/cohort/hands/{hand.pk}/eps/{exam.pk}/edit/"' in page
    form = client.get(f"/cohort/hands/{hand.pk}/eps/{exam.pk}/edit/").content.decode()
    assert 'value="2026-02-01"' in form and 'value="5.2"' in form
    response = client.post(f"/cohort/hands/{hand.pk}/eps/{exam.pk}/edit/",
                           {"exam_date": "2026-02-01", "dml_ms": "3.9", "sncv_m_s": "48"}, follow=True)
    assert "corrected" in response.content.decode()
    hand.refresh_from_db()
    assert (hand.stage, hand.group) == (1, "control")
    assert EpsExam.objects.get().dml_ms == 3.9


def test_a_refused_correction_keeps_the_exam_and_shows_why(client_for):
    hand = make_hand(eps={"dml_ms": 5.2, "sncv_m_s": 36.0})
    exam = hand.eps_exams.get()
    response = client_for("coordinator").post(f"/cohort/hands/{hand.pk}/eps/{exam.pk}/edit/",
                                              {"exam_date": "2026-02-01", "dml_ms": "", "sncv_m_s": ""})
    assert response.status_code == 400 and "has no finding" in response.content.decode()
    assert (EpsExam.objects.get().dml_ms, Hand.objects.get().stage) == (5.2, 3)


def test_remove_an_exam_after_confirming(client_for):
    hand = make_hand(eps={"dml_ms": 5.2, "sncv_m_s": 36.0, "exam_date": dt.date(2026, 1, 1)})
    services.eps_exam_create(hand=hand, exam_date=dt.date(2026, 3, 1), dml_ms=3.9, sncv_m_s=48.0)
    latest = hand.eps_exams.get(exam_date=dt.date(2026, 3, 1))
    client = client_for("coordinator")
    confirm = client.get(f"/cohort/hands/{hand.pk}/eps/{latest.pk}/delete/")
    page = confirm.content.decode()
    assert confirm.status_code == 200 and "Remove the EPS exam" in page
    assert "Stage 3" in page and 'data-group="cts"' in page  # what the hand becomes, before anything changes
    assert EpsExam.objects.count() == 2
    response = client.post(f"/cohort/hands/{hand.pk}/eps/{latest.pk}/delete/", follow=True)
    assert "removed" in response.content.decode()
    hand.refresh_from_db()
    assert list(hand.eps_exams.values_list("exam_date", flat=True)) == [dt.date(2026, 1, 1)]
    assert (hand.stage, hand.group) == (3, "cts")


def test_an_exam_of_another_hand_is_not_found(client_for):
    hand, other = make_hand(), make_hand(eps={"dml_ms": 5.2, "sncv_m_s": 36.0})
    exam = other.eps_exams.get()
    client = client_for("coordinator")
    assert client.get(f"/cohort/hands/{hand.pk}/eps/{exam.pk}/edit/").status_code == 404
    assert client.post(f"/cohort/hands/{hand.pk}/eps/{exam.pk}/delete/").status_code == 404
    assert EpsExam.objects.count() == 1


def test_pi_sees_no_exam_actions(client_for):
    hand = make_hand(eps={"dml_ms": 5.2, "sncv_m_s": 36.0})
    page = client_for("pi").get(f"/cohort/hands/{hand.pk}/").content.decode()
    assert "/edit/" not in page.split("Electrophysiology")[1].split("Cross-sectional")[0]
    assert "/delete/" not in page


def test_the_pi_chooses_the_csa_method_of_the_baseline_and_the_change_is_audited(client_for):
    from studyapp.protocol.models import StudySettings

    pi = client_for("pi")
    assert "CSA method of the baseline" in pi.get("/cohort/settings/").content.decode()
    response = pi.post("/cohort/settings/", {"dml_threshold_ms": "4.5", "sncv_threshold_m_s": "40",
                                             "frames_per_clip": "100", "crop_size_mm": "15",
                                             "csa_baseline_method": "outline", **RATER_FORM}, follow=True)
    assert response.status_code == 200
    assert StudySettings.current().csa_baseline_method == "outline"
    latest = StudySettings.current().history.first()
    assert (latest.csa_baseline_method, latest.history_user.username) == ("outline", "pi")
    assert "Traced outline on a frame" in response.content.decode()  # the history table on the page


def test_group_badges_read_as_the_model_labels(client_for):
    make_hand(study_code="GB-1")
    make_hand(study_code="GB-2", eps={"dml_ms": 5.2, "sncv_m_s": 36.0})
    page = client_for("pi").get("/cohort/").content.decode()
    assert '<span class="badge needs_review" data-group="needs_review">Needs review</span>' in page
    assert '<span class="badge cts" data-group="cts">CTS</span>' in page
    hand = make_hand()
    preview = client_for("coordinator").post(f"/cohort/hands/{hand.pk}/eps/preview/",
                                             {"dml_ms": "3.5", "sncv_m_s": "50"}).content.decode()
    assert '<span class="badge control" data-group="control">Control</span>' in preview


def test_a_form_saved_on_an_outdated_page_shows_what_changed_and_keeps_both_edits(client_for, users):
    client = client_for("coordinator")
    participant = make_hand(age=40, sex="female").participant
    url = f"/cohort/participants/{participant.pk}/edit/"
    page = client.get(url).content.decode()
    assert 'name="version" value="1"' in page
    services.participant_update(participant=participant, expected_version=1, age=50, history_user=users["pi"])
    typed = {"study_code": participant.study_code, "sex": "male", "age": "40", "recruitment": "patient",
             "enrolled_on": "2026-01-15", "version": "1"}
    response = client.post(url, typed)
    assert response.status_code == 400
    page = response.content.decode()
    assert "was changed by pi since you loaded it" in page and "Age (years): 40 → 50" in page
    assert "Changed meanwhile: now 50 (was 40 when you opened this page)." in page
    assert 'name="version" value="2"' in page  # a second save, knowingly, applies what was typed
    participant.refresh_from_db()
    assert (participant.age, participant.sex, participant.version) == (50, "female", 2)
    assert client.post(url, {**typed, "age": "50", "version": "2"}).status_code == 302
    participant.refresh_from_db()
    assert (participant.age, participant.sex, participant.version) == (50, "male", 3)


def test_forms_write_only_the_fields_they_change(client_for):
    client = client_for("coordinator")
    hand = make_hand(eps={"dml_ms": 4.0, "sncv_m_s": 45.0})
    exam = EpsExam.objects.get(hand=hand)
    url = f"/cohort/hands/{hand.pk}/eps/{exam.pk}/edit/"
    assert 'name="version" value="1"' in client.get(url).content.decode()
    response = client.post(url, {"exam_date": exam.exam_date.isoformat(), "dml_ms": "5.0", "sncv_m_s": "45.0",
                                 "version": "1"})
    assert response.status_code == 302
    latest = exam.history.first()
    assert latest.dml_ms == 5.0 and latest.version == 2
    stale = client.post(f"/cohort/hands/{hand.pk}/eligibility/",
                        {"exclusion_reason": "prior_wrist_surgery", "exclusion_detail": "", "version": "1"})
    assert stale.status_code == 302  # the hand itself was not edited: version 1 is current
    hand.refresh_from_db()
    assert hand.version == 2 and hand.group == "excluded"
    stale = client.post(f"/cohort/hands/{hand.pk}/eligibility/", {"exclusion_reason": "", "version": "1"})
    assert stale.status_code == 400 and "Changed meanwhile" in stale.content.decode()
