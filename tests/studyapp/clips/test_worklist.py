"""Clip assignment (who may assign, take and release; audited) and the annotator's worklist."""

import re

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from studyapp.annotations import services as annotation_services
from studyapp.annotations.models import RoiAnnotation
from studyapp.clips import services
from studyapp.clips.models import Clip
from studyapp.clips.selectors import annotator_worklist
from tests.factories import UserFactory, make_clip, make_hand

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_broker(monkeypatch):
    monkeypatch.setattr(services, "_queue_extraction", lambda clip_id: None)


def _clip(tmp_path, seed, *, extract=True, **hand):
    clip, _ = make_clip(tmp_path, hand=make_hand(**hand), name=f"clip{seed}.mp4", seed=seed, n_frames=4,
                        extract=extract)
    return clip


def _confirm(clip, annotator, n):
    """The annotator's confirmed ROIs on the first n frames."""
    for frame in clip.frames.order_by("index")[:n]:
        annotation_services.roi_save(frame=frame, annotator=annotator, center_x=80, center_y=60,
                                     status=RoiAnnotation.Status.CONFIRMED)


def _outline(clip, annotator):
    annotation_services.outline_create(frame=clip.frames.first(), annotator=annotator,
                                       points=[[60, 40], [100, 40], [100, 80], [60, 80]])


def _code(error: ValidationError) -> str:
    return next(e.code for errors in error.error_dict.values() for e in errors)


# ---------------------------------------------------------------- assignment rules

def test_coordinator_assigns_on_the_clip_page_and_it_is_audited(client_for, users, tmp_path):
    clip = _clip(tmp_path, 1)
    response = client_for("coordinator").post(f"/clips/{clip.pk}/assign/", {"annotator": users["annotator"].pk})
    assert response.status_code == 302 and response["Location"] == f"/clips/{clip.pk}/"
    clip.refresh_from_db()
    assert clip.assigned_to == users["annotator"]
    record = clip.history.latest()
    assert record.assigned_to_id == users["annotator"].pk and record.history_user == users["coordinator"]
    # ... and opens it again
    client_for("coordinator").post(f"/clips/{clip.pk}/assign/", {"annotator": ""})
    clip.refresh_from_db()
    assert clip.assigned_to is None and clip.history.count() == 3


def test_pi_and_admin_assign_annotators_only(users, tmp_path):
    clip = _clip(tmp_path, 2)
    for assigner in (users["pi"], users["admin"]):
        assert services.clip_assign(clip=clip, annotator=users["annotator"], assigned_by=assigner).assigned_to \
            == users["annotator"]
    with pytest.raises(ValidationError) as refused:
        services.clip_assign(clip=clip, annotator=users["coordinator"], assigned_by=users["pi"])
    assert _code(refused.value) == "not_an_annotator"
    inactive = UserFactory(username="gone", role="annotator", is_active=False)
    with pytest.raises(ValidationError):
        services.clip_assign(clip=clip, annotator=inactive, assigned_by=users["pi"])
    clip.refresh_from_db()
    assert clip.assigned_to == users["annotator"]  # the refusals changed nothing


def test_an_annotator_cannot_assign(client_for, users, tmp_path):
    clip = _clip(tmp_path, 3)
    assert client_for("annotator").post(f"/clips/{clip.pk}/assign/",
                                        {"annotator": users["annotator"].pk}).status_code == 403
    with pytest.raises(ValidationError) as refused:
        services.clip_assign(clip=clip, annotator=users["annotator"], assigned_by=users["annotator"])
    assert _code(refused.value) == "not_allowed"
    clip.refresh_from_db()
    assert clip.assigned_to is None


def test_the_assign_form_refuses_a_non_annotator_with_a_message(client_for, users, tmp_path):
    clip = _clip(tmp_path, 4)
    response = client_for("coordinator").post(f"/clips/{clip.pk}/assign/", {"annotator": users["pi"].pk},
                                              follow=True)
    assert "Select a valid choice" in response.content.decode()
    clip.refresh_from_db()
    assert clip.assigned_to is None


def test_annotator_takes_an_open_clip_but_not_someone_elses(client_for, users, tmp_path):
    clip = _clip(tmp_path, 5)
    response = client_for("annotator").post(f"/clips/{clip.pk}/take/", {"next": "/clips/worklist/"})
    assert response["Location"] == "/clips/worklist/"
    clip.refresh_from_db()
    assert clip.assigned_to == users["annotator"] and clip.history.latest().history_user == users["annotator"]
    second = UserFactory(username="annot2", role="annotator")
    with pytest.raises(ValidationError) as refused:
        services.clip_take(clip=clip, annotator=second)
    assert _code(refused.value) == "already_assigned" and "annot" in refused.value.messages[0]
    with pytest.raises(ValidationError) as refused:
        services.clip_release(clip=clip, user=second)
    assert _code(refused.value) == "not_yours"
    with pytest.raises(ValidationError):
        services.clip_take(clip=clip, annotator=users["coordinator"])
    clip.refresh_from_db()
    assert clip.assigned_to == users["annotator"]


def test_a_redirect_elsewhere_is_ignored(client_for, tmp_path):
    clip = _clip(tmp_path, 6)
    response = client_for("annotator").post(f"/clips/{clip.pk}/take/", {"next": "https://example.org/"})
    assert response["Location"] == f"/clips/{clip.pk}/"


def test_release_by_the_assignee_or_a_coordinator(client_for, users, tmp_path):
    clip = _clip(tmp_path, 7)
    services.clip_take(clip=clip, annotator=users["annotator"])
    client_for("annotator").post(f"/clips/{clip.pk}/release/")
    clip.refresh_from_db()
    assert clip.assigned_to is None
    services.clip_take(clip=clip, annotator=users["annotator"])
    assert services.clip_release(clip=clip, user=users["coordinator"]).assigned_to is None
    assert client_for("norole").post(f"/clips/{clip.pk}/release/").status_code == 403


# ---------------------------------------------------------------- the clip page

def test_clip_page_shows_each_role_its_assignment_controls(client_for, users, tmp_path):
    clip = _clip(tmp_path, 8)
    coordinator = client_for("coordinator").get(f"/clips/{clip.pk}/").content.decode()
    assert f'action="/clips/{clip.pk}/assign/"' in coordinator and "annot</option>" in coordinator
    assert "Take this clip" not in coordinator and "Predict with a model" not in coordinator
    annotator = client_for("annotator").get(f"/clips/{clip.pk}/").content.decode()
    assert "Take this clip" in annotator and f'action="/clips/{clip.pk}/assign/"' not in annotator
    assert "Predict with a model" not in annotator
    services.clip_take(clip=clip, annotator=users["annotator"])
    annotator = client_for("annotator").get(f"/clips/{clip.pk}/").content.decode()
    assert "Assigned to <strong>annot</strong>" in annotator and "Release it" in annotator
    pi = client_for("pi").get(f"/clips/{clip.pk}/").content.decode()
    assert f'href="/experiments/clips/{clip.pk}/predict/"' in pi
    # An admin took it: the coordinator's form shows them, and keeping them is not an unassignment.
    services.clip_assign(clip=clip, annotator=users["admin"], assigned_by=users["pi"])
    coordinator = client_for("coordinator").get(f"/clips/{clip.pk}/").content.decode()
    assert f'<option value="{users["admin"].pk}" selected>root</option>' in coordinator
    client_for("coordinator").post(f"/clips/{clip.pk}/assign/", {"annotator": users["admin"].pk})
    clip.refresh_from_db()
    assert clip.assigned_to == users["admin"]


# ---------------------------------------------------------------- the worklist

def _main_text(html: str) -> str:
    main = re.search(r"<main.*?</main>", html, re.S).group(0)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", main))


def _row(html: str, clip: Clip) -> str:
    match = re.search(rf'<tr id="work-clip-{clip.pk}".*?</tr>', html, re.S)
    return _main_text(f"<main>{match.group(0)}</main>") if match else ""


def test_worklist_lists_assigned_and_open_clips_with_progress(client_for, users, tmp_path):
    annotator, other = users["annotator"], UserFactory(username="annot2", role="annotator")
    mine = _clip(tmp_path, 11, study_code="P-011")
    services.clip_assign(clip=mine, annotator=annotator, assigned_by=users["coordinator"])
    _confirm(mine, annotator, 3)
    _confirm(mine, other, 4)  # someone else's ROIs are not my progress
    open_clip = _clip(tmp_path, 12, study_code="P-012")
    theirs = _clip(tmp_path, 13, study_code="P-013")
    services.clip_assign(clip=theirs, annotator=other, assigned_by=users["coordinator"])
    waiting = _clip(tmp_path, 14, extract=False, study_code="P-014")
    excluded = _clip(tmp_path, 15, study_code="P-015", exclusion_reason="prior_wrist_surgery")

    response = client_for("annotator").get("/clips/worklist/")
    assert response.status_code == 200
    html = response.content.decode()
    assigned = html.split('id="assigned"')[1].split('id="open"')[0]
    opened = html.split('id="open"')[1].split('id="second"')[0]
    assert f"work-clip-{mine.pk}" in assigned and f"work-clip-{open_clip.pk}" in opened
    assert f"work-clip-{waiting.pk}" in opened and f"work-clip-{theirs.pk}" not in html
    assert f"work-clip-{excluded.pk}" not in html
    row = _row(html, mine)
    assert "3 / 4" in row and "(75%)" in row and "not yet" in row and "1 other annotator" in row
    assert f'href="/clips/{mine.pk}/annotate/"' in assigned and "Release" in row
    assert "0 / 4" in _row(html, open_clip) and "Take" in _row(html, open_clip)
    waiting_row = _row(html, waiting)
    assert "Queued" in waiting_row and "no frames yet" in waiting_row
    assert f'href="/clips/{waiting.pk}/annotate/"' not in html  # nothing to annotate before extraction


def test_done_clips_collapse_into_a_count(client_for, users, tmp_path):
    annotator = users["annotator"]
    done = _clip(tmp_path, 21)
    services.clip_take(clip=done, annotator=annotator)
    _confirm(done, annotator, 4)
    almost = _clip(tmp_path, 22)
    _confirm(almost, annotator, 4)  # every ROI, but no outline yet
    _outline(done, annotator)
    html = client_for("annotator").get("/clips/worklist/").content.decode()
    assert f"work-clip-{done.pk}" not in html and "1 clip done" in html
    assert "4 / 4" in _row(html, almost) and "not yet" in _row(html, almost)
    html = client_for("annotator").get("/clips/worklist/?done=1").content.decode()
    row = _row(html, done)
    assert "4 / 4" in row and "traced" in row


def test_open_clips_someone_else_finished_wait_only_for_a_second_rating(client_for, users, tmp_path):
    other = UserFactory(username="annot2", role="annotator")
    finished = _clip(tmp_path, 26)
    _confirm(finished, other, 4)
    started = _clip(tmp_path, 27)
    _confirm(started, other, 3)  # not finished: still open work
    html = client_for("annotator").get("/clips/worklist/").content.decode()
    opened = html.split('id="open"')[1].split('id="second"')[0]
    assert f"work-clip-{started.pk}" in opened and f"work-clip-{finished.pk}" not in html
    assert "1 open clip already fully annotated by another annotator" in html
    html = client_for("annotator").get("/clips/worklist/?second=1").content.decode()
    second = html.split('id="second"')[1].split('id="done"')[0]
    row = _row(second, finished)
    assert "0 / 4" in row and "1 other annotator" in row and "Take" in row
    # for the one who finished it, it is their own work
    work = annotator_worklist(annotator=other)
    assert finished in [i.clip for i in work.open] and not work.second_rating


def test_the_worklist_says_nothing_about_diagnosis(client_for, users, tmp_path):
    clip = _clip(tmp_path, 31, study_code="P-031", sex="female", age=67, recruitment="patient",
                 eps={"dml_ms": 6.5, "sncv_m_s": 30.0})
    assert clip.hand.group == "cts" and clip.hand.stage
    healthy = _clip(tmp_path, 32, study_code="P-032", recruitment="healthy_volunteer",
                    eps={"dml_ms": 3.2, "sncv_m_s": 55.0})
    assert healthy.hand.group == "control"
    services.clip_take(clip=clip, annotator=users["annotator"])
    text = _main_text(client_for("annotator").get("/clips/worklist/").content.decode())
    assert "P-031" in text and "P-032" in text
    for word in ("cts", "control", "group", "stage", "eps", "dml", "sncv", "female", "male", "age", "patient",
                 "volunteer", "67", "6.5", "30.0", "excluded", "review"):
        assert not re.search(rf"\b{re.escape(word)}\b", text, re.I), word


def test_the_worklist_takes_a_constant_number_of_queries(client_for, users, tmp_path):
    annotator = users["annotator"]
    client = client_for("annotator")
    first = _clip(tmp_path, 41)
    _confirm(first, annotator, 2)
    client.get("/clips/worklist/")  # warm the session, permissions and settings caches alike

    def queries():
        with CaptureQueriesContext(connection) as context:
            assert client.get("/clips/worklist/").status_code == 200
        return len(context.captured_queries)

    one = queries()
    for seed in (42, 43, 44):
        clip = _clip(tmp_path, seed)
        _confirm(clip, annotator, 1)
        _outline(clip, annotator)
        services.clip_take(clip=clip, annotator=annotator)
    _clip(tmp_path, 45, extract=False)
    assert len(annotator_worklist(annotator=annotator).open) == 2
    assert queries() == one


@pytest.mark.parametrize("role, status", [("annotator", 200), ("admin", 200), ("coordinator", 403), ("pi", 403),
                                          ("norole", 403)])
def test_the_worklist_is_for_annotators(client_for, role, status):
    assert client_for(role).get("/clips/worklist/").status_code == status


def test_nav_links_the_worklist_for_annotators_only(client_for):
    assert 'href="/clips/worklist/"' in client_for("annotator").get("/cohort/").content.decode()
    assert 'href="/clips/worklist/"' not in client_for("coordinator").get("/cohort/").content.decode()


def test_the_api_shows_the_assignee_but_never_changes_it(api_for, users, tmp_path):
    clip = _clip(tmp_path, 51)
    services.clip_take(clip=clip, annotator=users["annotator"])
    api = api_for("coordinator")
    assert api.get(f"/api/clips/?assigned_to={users['annotator'].pk}").json()["results"][0]["id"] == clip.pk
    response = api.patch(f"/api/clips/{clip.pk}/", {"assigned_to": users["pi"].pk, "notes": "n"}, format="json")
    assert response.status_code == 200 and response.json()["assigned_to"] == users["annotator"].pk
    clip.refresh_from_db()
    assert clip.assigned_to == users["annotator"] and clip.notes == "n"
