"""Real concurrent clients on PostgreSQL: each thread has its own connection and its own transaction."""

import threading

import pytest
from django.db import connection, connections
from rest_framework.test import APIClient

from studyapp.cohort import services
from studyapp.cohort.models import CsaMeasurement, EpsExam, Hand, Participant
from studyapp.protocol.models import StudySettings
from tests.factories import UserFactory, make_hand

pytestmark = [pytest.mark.django_db(transaction=True),
              pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks need PostgreSQL")]


@pytest.fixture
def coordinators():
    return [UserFactory(username=f"coord{i}", role="coordinator") for i in range(2)]


def _client(user) -> APIClient:
    api = APIClient()
    api.force_authenticate(user)
    return api


def _at_once(*calls):
    """Run the calls in threads released together; return their responses in order."""
    barrier = threading.Barrier(len(calls))
    results = [None] * len(calls)

    def run(i, call):
        try:
            barrier.wait()
            results[i] = call()
        except Exception as exc:  # the test asserts on it: a crash is a result too
            results[i] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i, call)) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


@pytest.mark.parametrize("with_version", [True, False], ids=["same-version", "no-version"])
def test_two_coordinators_editing_one_participant_lose_nothing(coordinators, with_version):
    a, b = (_client(user) for user in coordinators)
    participant = make_hand(age=40, sex="female").participant
    lost = 0
    for trial in range(20 if with_version else 10):
        participant.refresh_from_db()
        version = {"version": participant.version} if with_version else {}
        new_age, new_sex = 41 + trial, ("male" if trial % 2 == 0 else "other")
        url = f"/api/participants/{participant.pk}/"
        age, sex = _at_once(lambda: a.patch(url, {"age": new_age, **version}, format="json"),
                            lambda: b.patch(url, {"sex": new_sex, **version}, format="json"))
        assert {age.status_code, sex.status_code} <= {200, 409}, (age.content, sex.content)
        participant.refresh_from_db()
        # Each edit is either in the database or was refused: none answered 200 and then vanished.
        lost += (age.status_code == 200 and participant.age != new_age)
        lost += (sex.status_code == 200 and participant.sex != new_sex)
        if with_version:
            assert sorted([age.status_code, sex.status_code]) == [200, 409]
        else:
            assert (participant.age, participant.sex) == (new_age, new_sex)
    assert lost == 0
    # Every applied edit has its audit row, with who made it.
    assert participant.history.count() == participant.version


def test_a_stale_edit_gets_409_with_the_current_record_and_what_changed(coordinators):
    a, b = (_client(user) for user in coordinators)
    participant = make_hand(age=40).participant
    url = f"/api/participants/{participant.pk}/"
    loaded = a.get(url)
    assert loaded["ETag"] == '"1"' and loaded.json()["version"] == 1
    assert b.patch(url, {"age": 50, "version": 1}, format="json").status_code == 200
    stale = a.patch(url, {"sex": "other"}, format="json", HTTP_IF_MATCH=loaded["ETag"])
    assert stale.status_code == 409
    body = stale.json()
    assert body["code"] == "stale_version" and body["current"]["age"] == 50 and body["current"]["version"] == 2
    assert body["changed"] == [{"field": "age", "before": 40, "after": 50}]
    assert "coord1" in body["detail"]
    participant.refresh_from_db()
    assert participant.sex != "other"
    fresh = a.patch(url, {"sex": "other"}, format="json", HTTP_IF_MATCH='"2"')
    assert fresh.status_code == 200 and fresh["ETag"] == '"3"'


def test_hands_exams_and_measurements_refuse_stale_edits(coordinators):
    a, b = (_client(user) for user in coordinators)
    hand = make_hand(eps={"dml_ms": 4.0, "sncv_m_s": 45.0})
    csa = a.post("/api/csa-measurements/", {"hand": hand.pk, "csa_mm2": 10.0}, format="json").json()["id"]
    for url, first, second in [
        (f"/api/hands/{hand.pk}/", {"exclusion_reason": "prior_wrist_surgery"}, {"exclusion_detail": "x"}),
        (f"/api/eps-exams/{EpsExam.objects.get(hand=hand).pk}/", {"dml_ms": 5.0}, {"sncv_m_s": 40.0}),
        (f"/api/csa-measurements/{csa}/", {"csa_mm2": 11.0}, {"site": "forearm"}),
    ]:
        version = a.get(url).json()["version"]
        results = _at_once(lambda: a.patch(url, {**first, "version": version}, format="json"),
                           lambda: b.patch(url, {**second, "version": version}, format="json"))
        assert sorted(r.status_code for r in results) == [200, 409], url
        winner = first if results[0].status_code == 200 else second
        current = a.get(url).json()
        assert {k: current[k] for k in winner} == winner and current["version"] == version + 1
    # Two exams added at once to one hand: both land (no deadlock between the insert and the re-staging).
    exams = [{"hand": hand.pk, "exam_date": f"2026-03-0{day}", "dml_ms": 6.5, "sncv_m_s": 30.0} for day in (1, 2)]
    results = _at_once(*(lambda body=body, api=api: api.post("/api/eps-exams/", body, format="json")
                         for body, api in zip(exams, (a, b))))
    assert [r.status_code for r in results] == [201, 201], [r.content for r in results]
    hand.refresh_from_db()
    latest = services.hand_assessment(hand=hand, thresholds=StudySettings.current().thresholds)
    assert hand.eps_exams.count() == 3 and (hand.stage, hand.staging_reason) == (latest.stage, latest.reason)


def test_concurrent_enrolment_of_one_code_or_one_side_never_crashes(coordinators):
    a, b = (_client(user) for user in coordinators)
    for trial in range(8):
        body = {"study_code": f"RACE-{trial}", "sex": "female", "age": 50, "recruitment": "patient"}
        results = _at_once(lambda: a.post("/api/participants/", body, format="json"),
                           lambda: b.post("/api/participants/", body, format="json"))
        codes = sorted(r.status_code for r in results)
        assert codes == [201, 400], [r.content for r in results]
        refused = next(r for r in results if r.status_code == 400).json()
        assert "study_code" in refused and "already exists" in str(refused["study_code"])
        participant = Participant.objects.get(study_code=f"RACE-{trial}")
        hand = {"participant": participant.pk, "side": "left"}
        results = _at_once(lambda: a.post("/api/hands/", hand, format="json"),
                           lambda: b.post("/api/hands/", hand, format="json"))
        assert sorted(r.status_code for r in results) == [201, 400], [r.content for r in results]
        assert "already has a hand on this side" in str(next(r for r in results if r.status_code == 400).json())
    assert Hand.objects.filter(participant__study_code__startswith="RACE-").count() == 8
    assert CsaMeasurement.objects.count() == 0
