import datetime as dt

import pytest

from studyapp.cohort import services
from studyapp.cohort.audit import hand_audit_trail
from tests.factories import make_hand

pytestmark = pytest.mark.django_db


def test_every_change_is_recorded_with_who_and_old_and_new_values(client_for, users):
    client = client_for("coordinator")
    hand = make_hand(eps={"dml_ms": 4.0, "sncv_m_s": 50.0})
    exam = hand.eps_exams.get()
    response = client.patch(f"/api/eps-exams/{exam.pk}/", {"dml_ms": 5.5}, content_type="application/json")
    assert response.status_code == 200
    client.delete(f"/api/eps-exams/{exam.pk}/")
    trail = hand_audit_trail(hand, include_demographics=True)
    changed = [e for e in trail if e.subject.startswith("EPS") and e.action == "changed"]
    assert len(changed) == 1
    assert changed[0].who == "coord"
    assert [(c.field, c.old, c.new) for c in changed[0].changes] == [("DML (ms)", 4.0, 5.5)]
    deleted = [e for e in trail if e.subject.startswith("EPS") and e.action == "deleted"]
    assert deleted and deleted[0].who == "coord"
    # the derived stage change is in the trail too
    hand_changes = [c for e in trail if e.subject == "Right hand" for c in e.changes if c.field == "stage"]
    assert any(c.old == 1 and c.new == 2 for c in hand_changes)


def test_history_page_and_demographics_hidden_for_annotators(client_for):
    hand = make_hand(age=60)
    services.participant_update(participant=hand.participant, age=61)
    services.csa_measurement_create(hand=hand, csa_mm2=10.0, measured_on=dt.date(2026, 1, 3))
    page = client_for("pi").get(f"/cohort/hands/{hand.pk}/history/").content.decode()
    assert "60 → 61" in page and "CSA measurement of 2026-01-03 created" in page
    annotator_page = client_for("annotator").get(f"/cohort/hands/{hand.pk}/history/").content.decode()
    # Neither the age nor a CSA value the annotator didn't measure (the scanner's CSA is a finding).
    assert "60 → 61" not in annotator_page and "CSA measurement" not in annotator_page


def test_correcting_and_removing_an_exam_in_the_web_is_audited_with_the_user(client_for):
    hand = make_hand(eps={"dml_ms": 5.2, "sncv_m_s": 36.0})
    exam = hand.eps_exams.get()
    client = client_for("coordinator")
    client.post(f"/cohort/hands/{hand.pk}/eps/{exam.pk}/edit/",
                {"exam_date": "2026-02-01", "dml_ms": "5.4", "sncv_m_s": "36"})
    client.post(f"/cohort/hands/{hand.pk}/eps/{exam.pk}/delete/")
    trail = hand_audit_trail(hand, include_demographics=True)
    exam_entries = [(e.action, e.who) for e in trail if e.subject == "EPS exam of 2026-02-01"]
    assert exam_entries == [("deleted", "coord"), ("changed", "coord"), ("created", "system")]
    restaged = [e for e in trail if e.subject == "Right hand" and e.action == "changed"]
    assert restaged[0].who == "coord"  # the removal re-staged the hand as the same user
    page = client.get(f"/cohort/hands/{hand.pk}/history/").content.decode()
    assert "EPS exam of 2026-02-01 deleted" in page and "5.2 → 5.4" in page


def test_removing_an_exam_outside_a_request_records_the_given_user(users):
    hand = make_hand(eps={"dml_ms": 5.2, "sncv_m_s": 36.0})
    services.eps_exam_delete(exam=hand.eps_exams.get(), history_user=users["coordinator"])
    trail = hand_audit_trail(hand, include_demographics=True)
    assert [e.who for e in trail if e.action == "deleted"] == ["coord"]
    assert [e.who for e in trail if e.subject == "Right hand" and e.action == "changed"][0] == "coord"
