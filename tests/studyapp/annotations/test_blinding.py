"""Every endpoint and page that carries ROIs, outlines, stage or group, as a second annotator.

The first annotator ("annot") annotated and outlined a clip of a CTS hand; the second ("annot2") did not.
The second must get only their own work and nothing of the diagnosis; a filter on a hidden field must
not narrow what they get.
"""

import datetime as dt
import json
import re

import pytest
from rest_framework.test import APIClient

from studyapp.annotations import propagation, services
from studyapp.cohort import services as cohort_services
from studyapp.protocol.models import StudySettings
from tests.factories import UserFactory, make_clip, make_hand

pytestmark = pytest.mark.django_db

DIAGNOSIS_FIELDS = {"stage", "group", "staging_reason", "needs_restaging", "staged_at", "exclusion_reason",
                    "exclusion_detail"}


@pytest.fixture
def study(tmp_path, users):
    cts = make_hand(study_code="CTS-0101", eps={"dml_ms": 5.6, "sncv_m_s": 33.0})  # staged CTS
    control = make_hand(study_code="CTS-0102", recruitment="healthy_volunteer")
    excluded = make_hand(study_code="CTS-0103", exclusion_reason="prior_wrist_surgery")
    assert cts.group == "cts" and cts.stage and control.group == "control"
    cohort_services.csa_measurement_create(hand=cts, csa_mm2=14.2, measured_on=dt.date(2026, 2, 1))  # scanner
    clip, _ = make_clip(tmp_path, hand=cts, n_frames=6)
    frames = list(clip.frames.all())
    first = users["annotator"]
    services.roi_save(frame=frames[0], annotator=first, center_x=80, center_y=60)
    services.roi_save(frame=frames[5], annotator=first, center_x=84, center_y=60)
    propagation.roi_propagate(clip=clip, annotator=first)
    outline = services.outline_create(frame=frames[0], annotator=first, points=[[70, 50], [90, 50], [90, 70],
                                                                               [70, 70]])
    second = UserFactory(username="annot2", role="annotator")
    return {"cts": cts, "control": control, "excluded": excluded, "clip": clip, "frames": frames,
            "first": first, "second": second, "outline": outline}


def api(user):
    client = APIClient()
    client.force_authenticate(user)
    return client


def ids(response):
    body = response.json()
    return [row["id"] for row in (body["results"] if isinstance(body, dict) and "results" in body else body)]


# ---------------------------------------------------------------- API

def test_second_annotator_gets_no_roi_or_outline_of_the_first(study, api_for):
    second, clip = api(study["second"]), study["clip"]
    assert ids(second.get(f"/api/annotations/?frame__clip={clip.pk}")) == []
    assert ids(second.get(f"/api/annotations/?annotator__username=annot")) == []
    assert ids(second.get(f"/api/outlines/?frame__clip={clip.pk}")) == []
    assert ids(second.get("/api/outlines/?annotator__username=annot")) == []
    assert second.get(f"/api/outlines/{study['outline'].pk}/").status_code == 404
    assert second.delete(f"/api/outlines/{study['outline'].pk}/").status_code == 404
    # Those who adjudicate see the first annotator's work.
    assert len(ids(api_for("pi").get(f"/api/annotations/?frame__clip={clip.pk}"))) == 6
    assert len(ids(api_for("coordinator").get(f"/api/outlines/?frame__clip={clip.pk}"))) == 1
    assert len(ids(api_for("admin").get(f"/api/annotations/?frame__clip={clip.pk}"))) == 6


def test_second_annotator_gets_their_own_work(study):
    second, frame = api(study["second"]), study["frames"][2]
    assert second.post("/api/annotations/", {"frame": frame.pk, "center_x": 60, "center_y": 60},
                       format="json").status_code == 201
    assert second.post("/api/outlines/", {"frame": frame.pk, "points": [[50, 50], [70, 50], [70, 70]]},
                       format="json").status_code == 201
    rois = second.get(f"/api/annotations/?frame__clip={study['clip'].pk}").json()
    assert [(r["annotator"], r["index"]) for r in rois] == [("annot2", 2)]
    outlines = second.get(f"/api/outlines/?frame__clip={study['clip'].pk}").json()["results"]
    assert [o["annotator"] for o in outlines] == ["annot2"]


def test_propagation_and_confirm_all_use_only_the_second_annotators_own_rois(study):
    second, clip = api(study["second"]), study["clip"]
    response = second.post(f"/api/clips/{clip.pk}/propagate/")
    assert response.status_code == 400 and "keyframe" in str(response.json())  # the first's keyframes don't count
    assert second.post(f"/api/clips/{clip.pk}/confirm-all/").json() == {"confirmed": 0}
    assert clip.frames.filter(rois__annotator=study["first"], rois__status="proposed").count() == 4


def test_hands_carry_no_diagnosis_for_an_annotator(study, api_for):
    second = api(study["second"])
    hands = second.get("/api/hands/").json()["results"]
    assert len(hands) == 3 and all(not DIAGNOSIS_FIELDS & set(h) for h in hands)
    assert not DIAGNOSIS_FIELDS & set(second.get(f"/api/hands/{study['cts'].pk}/").json())
    assert "recruitment" not in second.get(f"/api/participants/{study['cts'].participant_id}/").json()
    pi = api_for("pi").get(f"/api/hands/{study['cts'].pk}/").json()
    assert DIAGNOSIS_FIELDS <= set(pi) and pi["group"] == "cts"


@pytest.mark.parametrize("query", ["group=cts", "group=control", "stage=3", "stage=1", "included=false",
                                   "included=true", "exclusion_reason=prior_wrist_surgery", "needs_restaging=true",
                                   "ordering=stage", "ordering=-group", "ordering=group"])
def test_filters_on_hidden_hand_fields_do_not_narrow_for_an_annotator(study, api_for, query):
    second = api(study["second"])
    assert ids(second.get(f"/api/hands/?{query}")) == ids(second.get("/api/hands/"))


def test_filters_on_hidden_fields_still_work_for_the_pi(study, api_for):
    pi = api_for("pi")
    assert ids(pi.get("/api/hands/?group=cts")) == [study["cts"].pk]
    assert ids(pi.get("/api/participants/?recruitment=healthy_volunteer")) == [study["control"].participant_id]


@pytest.mark.parametrize("query", ["recruitment=healthy_volunteer", "recruitment=patient", "ordering=recruitment",
                                   "ordering=-recruitment"])
def test_filters_on_recruitment_do_not_narrow_for_an_annotator(study, query):
    second = api(study["second"])
    assert ids(second.get(f"/api/participants/?{query}")) == ids(second.get("/api/participants/"))


def test_eps_flow_and_agreement_are_refused_to_an_annotator(study):
    second = api(study["second"])
    for url in ("/api/eps-exams/", f"/api/eps-exams/?hand={study['cts'].pk}", "/api/cohort/flow/",
                "/api/agreement/"):
        assert second.get(url).status_code == 403, url


def test_an_annotator_sees_only_the_csa_values_they_measured(study, api_for):
    second = api(study["second"])
    assert ids(second.get(f"/api/csa-measurements/?hand={study['cts'].pk}")) == []
    first = api(study["first"]).get(f"/api/csa-measurements/?hand={study['cts'].pk}").json()["results"]
    assert [m["method"] for m in first] == ["outline"]  # their outline, not the scanner's 14.2
    assert len(ids(api_for("pi").get(f"/api/csa-measurements/?hand={study['cts'].pk}"))) == 2


def test_unblinded_annotators_may_read_other_raters_work(study):
    StudySettings.objects.update_or_create(id=1, defaults={"raters_blinded": False})
    second = api(study["second"])
    assert len(ids(second.get(f"/api/annotations/?frame__clip={study['clip'].pk}"))) == 6
    assert second.get("/api/hands/").json()["results"][0].keys().isdisjoint(DIAGNOSIS_FIELDS)  # diagnosis: never


# ---------------------------------------------------------------- pages

def _page(client, user, url):
    client.force_login(user)
    response = client.get(url)
    assert response.status_code == 200, url
    return response.content.decode()


def _no_diagnosis(html):
    text = re.sub(r"<[^>]+>", " ", html)
    for word in ("Stage ", "CTS</", "Control", "Needs review", "Excluded", "Patient", "Healthy volunteer",
                 "DML", "SNCV", "14.2", "prior wrist", "Prior wrist", "staging"):
        assert word not in html and word not in text, word


def test_cohort_pages_carry_no_diagnosis_for_an_annotator(client, study):
    second, cts = study["second"], study["cts"]
    listing = _page(client, second, "/cohort/")
    _no_diagnosis(listing)
    assert "CTS-0101" in listing and "CTS-0103" in listing
    for query in ("group=cts", "stage=3", "included=no", "restaging=yes"):
        filtered = _page(client, second, f"/cohort/?{query}")
        assert all(code in filtered for code in ("CTS-0101", "CTS-0102", "CTS-0103")), query
    _no_diagnosis(_page(client, second, f"/cohort/hands/{cts.pk}/"))
    _no_diagnosis(_page(client, second, f"/cohort/hands/{study['excluded'].pk}/"))
    history = _page(client, second, f"/cohort/hands/{cts.pk}/history/")
    _no_diagnosis(history)
    assert "EPS exam" not in history and "CSA measurement" not in history
    client.force_login(second)
    assert client.post(f"/cohort/hands/{cts.pk}/eps/preview/", {"dml_ms": "5", "sncv_m_s": "30"}).status_code == 403


def test_cohort_pages_keep_the_diagnosis_for_the_pi(client, users, study):
    listing = _page(client, users["pi"], "/cohort/?group=cts")
    assert "CTS-0101" in listing and "CTS-0102" not in listing
    hand = _page(client, users["pi"], f"/cohort/hands/{study['cts'].pk}/")
    assert "Stage" in hand and "DML" in hand and "14.2" in hand


def test_clip_pages_show_a_second_annotator_only_their_own_work(client, study):
    second, clip = study["second"], study["clip"]
    detail = _page(client, second, f"/clips/{clip.pk}/")
    assert "Nobody has annotated this clip yet" in detail and ">annot<" not in detail
    _no_diagnosis(detail)
    annotate = _page(client, second, f"/clips/{clip.pk}/annotate/")
    _no_diagnosis(annotate)
    config = json.loads(re.search(r'<script id="annotate-config" type="application/json">(.*?)</script>',
                                  annotate, re.S).group(1))
    assert config["blinded"] is True
    assert _page(client, study["first"], f"/clips/{clip.pk}/").count("<td>annot</td>") == 1
    client.force_login(second)
    assert client.get("/clips/agreement/").status_code == 403
    assert client.get("/clips/review/").status_code == 403
    worklist = _page(client, second, "/clips/worklist/")
    _no_diagnosis(worklist)


def test_unblinded_the_annotation_page_loads_other_raters_outlines(client, study):
    StudySettings.objects.update_or_create(id=1, defaults={"raters_blinded": False})
    annotate = _page(client, study["second"], f"/clips/{study['clip'].pk}/annotate/")
    config = json.loads(re.search(r'<script id="annotate-config" type="application/json">(.*?)</script>',
                                  annotate, re.S).group(1))
    assert config["blinded"] is False
    _no_diagnosis(annotate)
    outlines = api(study["second"]).get(f"/api/outlines/?frame__clip={study['clip'].pk}").json()["results"]
    assert [o["annotator"] for o in outlines] == ["annot"]
    assert _page(client, study["second"], f"/clips/{study['clip'].pk}/").count("<td>annot</td>") == 1
