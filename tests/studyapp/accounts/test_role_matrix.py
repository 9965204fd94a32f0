"""Every role against every cohort endpoint, in the API and the web UI alike."""

from types import SimpleNamespace

import pytest

from tests.conftest import assert_web_access
from tests.factories import UserFactory
from tests.factories import RATER_FORM, make_clip, make_hand, phantom_file, upload_file

pytestmark = pytest.mark.django_db

ROLES = ["coordinator", "annotator", "pi", "admin", "norole", "anonymous"]
EVERYONE = {"coordinator", "annotator", "pi", "admin"}
COORD = {"coordinator", "admin"}
CLINICAL = {"coordinator", "pi", "admin"}  # may see EPS and demographics
UPLOAD = {"coordinator", "annotator", "admin"}
ANNOTATE = {"annotator", "admin"}
RESULTS = {"coordinator", "pi", "admin"}  # explanations: read by PI and coordinator, never by annotators
PI_ONLY = {"pi", "admin"}
SITE_CORRECT = {"coordinator", "pi", "admin"}  # a clip's site and scanner, corrected with a reason
PLACEHOLDER = SimpleNamespace(pk=1, participant_id=1, clip=SimpleNamespace(pk=1), frame=SimpleNamespace(pk=1),
                              site=SimpleNamespace(pk=1),
                              exam=SimpleNamespace(pk=1), experiment=SimpleNamespace(pk=1),
                              run=SimpleNamespace(pk=1), job=SimpleNamespace(pk=1), explanation=SimpleNamespace(pk=1),
                              split=SimpleNamespace(pk=1), roi=SimpleNamespace(pk=1), outline=SimpleNamespace(pk=1),
                              csa=SimpleNamespace(pk=1))


@pytest.fixture
def hand(tmp_path, monkeypatch):
    from studyapp.clips import services

    monkeypatch.setattr(services, "_queue_extraction", lambda clip_id: None)
    hand = make_hand(eps={"dml_ms": 5.0, "sncv_m_s": 45.0})
    clip, _ = make_clip(tmp_path, hand=hand, n_frames=4)
    hand.clip = clip
    hand.frame = clip.frames.first()
    hand.exam = hand.eps_exams.get()
    hand.upload_path = phantom_file(tmp_path, "other.mp4", seed=9, n_frames=4)[0]
    # Two raters who disagree on the first frame, for the PI's review pages.
    from studyapp.annotations import services as annotation_services

    for name, x in (("rater-a", 40), ("rater-b", 120)):
        rater = UserFactory(username=name, role="annotator")
        hand.roi = annotation_services.roi_save(frame=hand.frame, annotator=rater, center_x=x, center_y=60)
        hand.outline = annotation_services.outline_create(frame=hand.frame, annotator=rater,
                                                          points=[[x - 10, 50], [x + 10, 50], [x + 10 + x / 10, 70]])
    from studyapp.cohort import services as cohort_services

    hand.csa = cohort_services.csa_measurement_create(hand=hand, csa_mm2=9.0, measured_on="2026-03-01")
    _explanation_objects(hand)
    hand.split = hand.experiment.split
    from studyapp.sites import services as site_services

    hand.site = site_services.site_create(code="matrix", name="Matrix site")
    return hand


def _explanation_objects(hand):
    """An experiment with a (not done) run, its explanation job and one explained frame with a crop file."""
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage

    from studyapp.experiments.models import Experiment, Split, TrainingRun
    from studyapp.explanations.models import ExplanationJob, FrameExplanation

    hand.experiment = Experiment.objects.create(name="e", split=Split.objects.create(name="s"), manifest_hash="x")
    hand.run = TrainingRun.objects.create(experiment=hand.experiment, model_name="squeezenet1_1", config={})
    hand.job = ExplanationJob.objects.create(run=hand.run, method="gradcam")
    crop = default_storage.save("explanations/crop.png", ContentFile(b"\x89PNG\r\n\x1a\n"))
    hand.explanation = FrameExplanation.objects.create(
        job=hand.job, frame=hand.frame, hand=hand, box=[0, 0, 60, 60], mm_per_px=0.5, attribution="a.npz",
        crop=crop, heatmap="h.png", overlay="o.png", probability=0.7, label=1, frame_outcome="TP",
        hand_probability=0.7, hand_outcome="TP", outline_source="none")


def participant_payload(role):
    return {"study_code": f"NEW-{role}", "sex": "male", "age": 40, "recruitment": "patient"}


API = [
    # (method, url, payload, roles allowed)
    ("get", lambda h: "/api/participants/", None, EVERYONE),
    ("post", lambda h: "/api/participants/", participant_payload, COORD),
    ("get", lambda h: f"/api/participants/{h.participant_id}/", None, EVERYONE),
    ("patch", lambda h: f"/api/participants/{h.participant_id}/", lambda r: {"age": 41}, COORD),
    ("delete", lambda h: f"/api/participants/{h.participant_id}/", None, COORD),
    ("get", lambda h: "/api/hands/", None, EVERYONE),
    ("post", lambda h: "/api/hands/", lambda r: None, COORD),
    ("get", lambda h: f"/api/hands/{h.pk}/", None, EVERYONE),
    ("patch", lambda h: f"/api/hands/{h.pk}/", lambda r: {"exclusion_reason": "prior_wrist_surgery"}, COORD),
    ("delete", lambda h: f"/api/hands/{h.pk}/", None, COORD),
    ("get", lambda h: "/api/eps-exams/", None, CLINICAL),
    ("post", lambda h: "/api/eps-exams/", lambda r: None, COORD),
    ("get", lambda h: "/api/csa-measurements/", None, EVERYONE),
    ("post", lambda h: "/api/csa-measurements/", lambda r: None, COORD),
    ("get", lambda h: "/api/cohort/flow/", None, CLINICAL),
    ("post", lambda h: "/api/cohort/restage/", lambda r: {}, {"coordinator", "pi", "admin"}),
    ("get", lambda h: f"/api/eps-exams/{h.exam.pk}/", None, CLINICAL),
    ("patch", lambda h: f"/api/eps-exams/{h.exam.pk}/", lambda r: {"dml_ms": 4.2}, COORD),
    ("delete", lambda h: f"/api/eps-exams/{h.exam.pk}/", None, COORD),
    ("get", lambda h: f"/api/csa-measurements/{h.csa.pk}/", None, EVERYONE),  # a blinded rater: their own only
    ("patch", lambda h: f"/api/csa-measurements/{h.csa.pk}/", lambda r: {"csa_mm2": 9.4}, COORD),
    ("delete", lambda h: f"/api/csa-measurements/{h.csa.pk}/", None, COORD),
    ("get", lambda h: "/api/schema/", None, EVERYONE | {"norole"}),
    ("get", lambda h: "/api/docs/", None, EVERYONE | {"norole"}),
    ("get", lambda h: "/api/redoc/", None, EVERYONE | {"norole"}),
    # Worker host names and the manual ping are for whoever looks after background work; anyone may read the
    # overall health (its detail grows with the role: tests/studyapp/ops/test_heartbeat.py).
    ("post", lambda h: "/api/ops/ping-worker/", lambda r: {}, PI_ONLY),
    ("get", lambda h: "/api/health/", None, set(ROLES)),
    # Any signed-in user may poll; a job that isn't theirs answers 404 like one that doesn't exist.
    ("get", lambda h: "/api/jobs/1/", None, EVERYONE | {"norole"}),
    ("get", lambda h: "/api/clips/", None, EVERYONE),
    ("post", lambda h: "/api/clips/", "upload", UPLOAD),
    ("get", lambda h: f"/api/clips/{h.clip.pk}/", None, EVERYONE),
    ("patch", lambda h: f"/api/clips/{h.clip.pk}/", lambda r: {"notes": "n"}, UPLOAD),
    ("get", lambda h: f"/api/clips/{h.clip.pk}/frames/", None, EVERYONE),
    ("post", lambda h: f"/api/clips/{h.clip.pk}/calibrate/", lambda r: {"pixel_spacing_mm": 0.2}, UPLOAD),
    ("post", lambda h: f"/api/clips/{h.clip.pk}/retry-extraction/", lambda r: {}, UPLOAD),
    ("post", lambda h: f"/api/clips/{h.clip.pk}/propagate/", lambda r: {}, ANNOTATE),
    ("post", lambda h: f"/api/clips/{h.clip.pk}/confirm-all/", lambda r: {}, ANNOTATE),
    ("post", lambda h: f"/api/clips/{h.clip.pk}/correct-site/", lambda r: {"site": None, "reason": f"by {r}"},
     SITE_CORRECT),
    # Sites: read by whoever uploads (to choose one), changed by the PI only.
    ("get", lambda h: "/api/sites/", None, EVERYONE),
    ("post", lambda h: "/api/sites/", lambda r: {"code": f"site-{r}", "name": r}, PI_ONLY),
    ("get", lambda h: f"/api/sites/{h.site.pk}/", None, EVERYONE),
    ("put", lambda h: f"/api/sites/{h.site.pk}/", lambda r: {"code": "matrix", "name": f"by {r}"}, PI_ONLY),
    ("patch", lambda h: f"/api/sites/{h.site.pk}/", lambda r: {"notes": f"by {r}"}, PI_ONLY),
    ("delete", lambda h: f"/api/sites/{h.site.pk}/", None, PI_ONLY),
    ("get", lambda h: "/api/annotations/", None, EVERYONE),
    ("post", lambda h: "/api/annotations/", lambda r: {"frame": "FRAME", "center_x": 80, "center_y": 60}, ANNOTATE),
    ("get", lambda h: f"/api/annotations/{h.roi.pk}/", None, EVERYONE),  # a blinded rater: their own only
    ("post", lambda h: f"/api/annotations/{h.roi.pk}/status/", lambda r: {"status": "confirmed", "version": 1},
     ANNOTATE),
    ("delete", lambda h: f"/api/annotations/{h.roi.pk}/?version=1", None, ANNOTATE),
    ("get", lambda h: "/api/outlines/", None, EVERYONE),
    ("get", lambda h: f"/api/outlines/{h.outline.pk}/", None, EVERYONE),
    ("delete", lambda h: f"/api/outlines/{h.outline.pk}/", None, ANNOTATE),
    ("post", lambda h: "/api/outlines/", lambda r: {"frame": "FRAME", "points": [[10, 10], [50, 10], [50, 40]]},
     ANNOTATE),
    ("get", lambda h: "/api/agreement/", None, CLINICAL),
    # Splits, experiments and models: the PI's (the others stay blinded to results).
    ("get", lambda h: "/api/splits/", None, {"pi", "admin"}),
    ("post", lambda h: "/api/splits/", lambda r: {"name": "s"}, {"pi", "admin"}),
    ("get", lambda h: "/api/experiments/", None, {"pi", "admin"}),
    ("post", lambda h: "/api/experiments/", lambda r: {"split": 1}, {"pi", "admin"}),
    ("get", lambda h: f"/api/splits/{h.split.pk}/", None, PI_ONLY),
    ("get", lambda h: f"/api/splits/{h.split.pk}/check/", None, PI_ONLY),
    ("get", lambda h: f"/api/splits/{h.split.pk}/manifest/", None, PI_ONLY),
    ("post", lambda h: f"/api/splits/{h.split.pk}/lock/", lambda r: {}, PI_ONLY),
    ("delete", lambda h: f"/api/splits/{h.split.pk}/", None, PI_ONLY),
    ("get", lambda h: f"/api/experiments/{h.experiment.pk}/", None, PI_ONLY),
    ("get", lambda h: "/api/models/", None, {"pi", "admin"}),
    ("get", lambda h: f"/api/models/{h.run.pk}/", None, PI_ONLY),
    ("post", lambda h: f"/api/models/{h.run.pk}/cancel/", lambda r: {}, PI_ONLY),
    ("post", lambda h: f"/api/models/{h.run.pk}/predict/", lambda r: {}, PI_ONLY),
    ("get", lambda h: f"/api/models/{h.run.pk}/predictions/", None, PI_ONLY),
    # Explanations: results, so PI and coordinator read them; only the PI queues and cancels.
    ("get", lambda h: "/api/explanation-jobs/", None, RESULTS),
    ("get", lambda h: f"/api/explanation-jobs/{h.job.pk}/", None, RESULTS),
    ("post", lambda h: "/api/explanation-jobs/", lambda r: {"run": "RUN"}, PI_ONLY),
    ("post", lambda h: f"/api/explanation-jobs/{h.job.pk}/cancel/", lambda r: {}, PI_ONLY),
    ("get", lambda h: "/api/frame-explanations/", None, RESULTS),
    ("get", lambda h: f"/api/frame-explanations/{h.explanation.pk}/", None, RESULTS),
    ("get", lambda h: f"/api/explanation-summaries/?experiment={h.experiment.pk}", None, RESULTS),
    # Prospective prediction: the PI freezes the model and reads the dashboard; predictions (sealed until the
    # hand's EPS is entered: tests/studyapp/prospective/test_blinding.py) are read by the PI and the coordinator.
    ("get", lambda h: "/api/prospective/models/", None, PI_ONLY),
    ("post", lambda h: "/api/prospective/models/", lambda r: {"run": "RUN"}, PI_ONLY),
    ("get", lambda h: "/api/prospective/models/1/", None, PI_ONLY),
    ("get", lambda h: "/api/prospective/predictions/", None, RESULTS),
    ("get", lambda h: "/api/prospective/dashboard/", None, PI_ONLY),
]


def _payload(spec, role, hand):
    if spec is None:
        return None
    if spec == "upload":
        return {"hand": hand.pk, "file": upload_file(hand.upload_path), "pixel_spacing_mm": 0.25}
    data = spec(role)
    if isinstance(data, dict) and data.get("frame") == "FRAME":
        data["frame"] = hand.frame.pk
    if isinstance(data, dict) and data.get("run") == "RUN":
        data["run"] = hand.run.pk
    if data is None:  # resources that point at the hand
        data = {"hand": hand.pk, "exam_date": "2026-03-01", "dml_ms": 4.0, "sncv_m_s": 50.0, "csa_mm2": 9.5,
                "participant": hand.participant_id, "side": "left"}
    return data


@pytest.mark.parametrize("method, url, payload, allowed", API,
                         ids=[f"{m.upper()} {u(PLACEHOLDER)}" for m, u, _, _ in API])
@pytest.mark.parametrize("role", ROLES)
def test_api_permissions(api_for, hand, role, method, url, payload, allowed):
    data = _payload(payload, role, hand)
    response = getattr(api_for(role), method)(url(hand), data, format="multipart" if payload == "upload" else "json")
    if role in allowed:  # allowed in: the request may still be refused on its merits, never for the role
        assert response.status_code not in (401, 403), response.content
    else:
        assert response.status_code in (401, 403), response.content


def test_annotator_never_sees_demographics(api_for, hand):
    data = api_for("annotator").get(f"/api/participants/{hand.participant_id}/").json()
    assert "sex" not in data and "age" not in data and data["study_code"]
    assert {"sex", "age"} <= set(api_for("pi").get(f"/api/participants/{hand.participant_id}/").json())


WEB = [
    ("get", lambda h: "/cohort/", None, EVERYONE),
    ("get", lambda h: "/cohort/participants/new/", None, COORD),
    ("post", lambda h: "/cohort/participants/new/",
     {"study_code": "WEB-1", "sex": "female", "age": 50, "recruitment": "patient", "enrolled_on": "2026-01-02",
      "enroll_left": "on"}, COORD),
    ("get", lambda h: f"/cohort/participants/{h.participant_id}/edit/", None, COORD),
    ("post", lambda h: f"/cohort/participants/{h.participant_id}/hands/", {"side": "left"}, COORD),
    ("get", lambda h: f"/cohort/hands/{h.pk}/", None, EVERYONE),
    ("post", lambda h: f"/cohort/hands/{h.pk}/eps/", {"exam_date": "2026-03-01", "dml_ms": "4", "sncv_m_s": "50"},
     COORD),
    ("post", lambda h: f"/cohort/hands/{h.pk}/eps/preview/", {"dml_ms": "4", "sncv_m_s": "50"}, CLINICAL),
    ("get", lambda h: f"/cohort/hands/{h.pk}/eps/{h.exam.pk}/edit/", None, COORD),
    ("post", lambda h: f"/cohort/hands/{h.pk}/eps/{h.exam.pk}/edit/",
     {"exam_date": "2026-03-01", "dml_ms": "4", "sncv_m_s": "50"}, COORD),
    ("get", lambda h: f"/cohort/hands/{h.pk}/eps/{h.exam.pk}/delete/", None, COORD),
    ("post", lambda h: f"/cohort/hands/{h.pk}/eps/{h.exam.pk}/delete/", {}, COORD),
    ("post", lambda h: f"/cohort/hands/{h.pk}/csa/", {"csa_mm2": "9.1", "site": "carpal_tunnel_inlet",
                                                      "measured_on": "2026-03-01"}, COORD),
    ("post", lambda h: f"/cohort/hands/{h.pk}/eligibility/", {"exclusion_reason": ""}, COORD),
    ("get", lambda h: f"/cohort/hands/{h.pk}/history/", None, EVERYONE),
    ("post", lambda h: "/cohort/restage/", {}, {"coordinator", "pi", "admin"}),
    ("get", lambda h: "/cohort/import/", None, COORD),
    ("get", lambda h: "/cohort/export.csv", None, CLINICAL),
    ("get", lambda h: "/cohort/settings/", None, EVERYONE),
    ("get", lambda h: f"/clips/frames/{h.frame.pk}/image.png", None, EVERYONE),
    ("get", lambda h: "/clips/worklist/", None, ANNOTATE),
    ("get", lambda h: "/clips/review/", None, {"pi", "admin"}),
    ("get", lambda h: f"/clips/review/frames/{h.frame.pk}/", None, {"pi", "admin"}),
    ("post", lambda h: f"/clips/review/frames/{h.frame.pk}/", {"keep": "rater-a"}, {"pi", "admin"}),
    ("get", lambda h: f"/clips/review/hands/{h.pk}/", None, {"pi", "admin"}),
    ("post", lambda h: f"/clips/review/hands/{h.pk}/", {"keep": "__third__", "csa_mm2": "9.5"}, {"pi", "admin"}),
    ("get", lambda h: "/clips/agreement/", None, CLINICAL),
    ("post", lambda h: f"/clips/{h.clip.pk}/take/", {}, ANNOTATE),
    ("post", lambda h: f"/clips/{h.clip.pk}/release/", {}, EVERYONE),
    ("post", lambda h: f"/clips/{h.clip.pk}/assign/", {"annotator": ""}, {"coordinator", "pi", "admin"}),
    ("get", lambda h: "/", None, set(ROLES)),  # a redirect to the cohort, which checks
    ("get", lambda h: f"/clips/hands/{h.pk}/upload/", None, UPLOAD),
    ("get", lambda h: f"/clips/{h.clip.pk}/", None, EVERYONE),
    ("get", lambda h: f"/clips/{h.clip.pk}/progress/", None, EVERYONE),
    ("post", lambda h: f"/clips/{h.clip.pk}/spacing/", {"pixel_spacing_mm": "0.2"}, UPLOAD),
    ("post", lambda h: f"/clips/{h.clip.pk}/site/", {"site": "", "reason": "matrix"}, SITE_CORRECT),
    ("get", lambda h: "/sites/", None, EVERYONE),
    ("get", lambda h: "/sites/new/", None, PI_ONLY),
    ("post", lambda h: "/sites/new/", {"code": "web-new", "name": "Web"}, PI_ONLY),
    ("get", lambda h: f"/sites/{h.site.pk}/edit/", None, PI_ONLY),
    ("post", lambda h: f"/sites/{h.site.pk}/edit/", {"code": "matrix", "name": "Edited", "version": ""}, PI_ONLY),
    ("post", lambda h: f"/sites/{h.site.pk}/delete/", {}, PI_ONLY),
    ("post", lambda h: f"/clips/{h.clip.pk}/retry/", {}, UPLOAD),
    ("get", lambda h: f"/clips/{h.clip.pk}/annotate/", None, ANNOTATE),
    ("get", lambda h: f"/experiments/clips/{h.clip.pk}/predict/", None, {"pi", "admin"}),
    ("get", lambda h: "/experiments/", None, {"pi", "admin"}),
    ("get", lambda h: f"/experiments/splits/{h.split.pk}/", None, PI_ONLY),
    ("get", lambda h: f"/experiments/splits/{h.split.pk}/estimate/", None, PI_ONLY),
    ("post", lambda h: f"/experiments/splits/{h.split.pk}/lock/", {}, PI_ONLY),
    ("post", lambda h: f"/experiments/runs/{h.run.pk}/cancel/", {}, PI_ONLY),
    ("post", lambda h: "/demo/seed/", {"confirm": ""}, PI_ONLY),
    ("get", lambda h: "/prospective/", None, PI_ONLY),
    ("get", lambda h: "/prospective/models/1/", None, PI_ONLY),
    ("post", lambda h: "/prospective/freeze/", {"run": ""}, PI_ONLY),
    ("get", lambda h: f"/explanations/experiments/{h.experiment.pk}/", None, RESULTS),
    ("get", lambda h: f"/explanations/frames/{h.explanation.pk}/crop/", None, RESULTS),
    ("post", lambda h: f"/explanations/runs/{h.run.pk}/explain/", {}, PI_ONLY),
    ("post", lambda h: f"/explanations/jobs/{h.job.pk}/cancel/", {}, PI_ONLY),
    # Dashboards: the cohort one shows demographics (clinical roles); the annotation one shows every rater's
    # work, which blinded raters don't see.
    ("get", lambda h: "/dashboards/cohort/", None, CLINICAL),
    ("get", lambda h: "/dashboards/annotation/", None, CLINICAL),
    ("post", lambda h: "/cohort/settings/", {"dml_threshold_ms": "4.5", "sncv_threshold_m_s": "40",
                                             "frames_per_clip": "100", "crop_size_mm": "15",
                                             "csa_baseline_method": "manual", **RATER_FORM}, {"pi", "admin"}),
]


@pytest.mark.parametrize("method, url, data, allowed", WEB,
                         ids=[f"{m.upper()} {u(PLACEHOLDER)}" for m, u, _, _ in WEB])
@pytest.mark.parametrize("role", ROLES)
def test_web_permissions(client, users, hand, role, method, url, data, allowed):
    if role != "anonymous":
        client.force_login(users[role])
    response = getattr(client, method)(url(hand), data or {})
    if role in allowed and response.status_code in (400, 404):  # let in, then refused on its merits (a form's
        return  # check, a split not locked yet); a role refused never gets this far
    assert_web_access(response, role, allowed)


# The experiment dashboard and the study report: the PI's (and the admin's); the others stay blinded to results.
@pytest.fixture
def reported_experiment():
    from django.core.files.base import ContentFile

    from studyapp.reports.models import StudyReport
    from tests.experiment_factories import evaluated_experiment

    experiment, _ = evaluated_experiment(n_hands=8, frames_per_clip=2, test_per_group=2, models=("squeezenet1_1",),
                                         n_boot=50)
    report = StudyReport.objects.create(experiment=experiment, status="done", done=4, total=4)
    report.html.save("report.html", ContentFile(b"<html></html>"), save=False)
    report.bundle.save("bundle.zip", ContentFile(b"PK"), save=False)
    report.save()
    return SimpleNamespace(pk=experiment.pk, report=report.pk)


PI_ONLY = {"pi", "admin"}
RESULTS_WEB = [
    ("get", lambda e: f"/experiments/{e.pk}/", PI_ONLY),
    ("get", lambda e: f"/reports/experiments/{e.pk}/status/", PI_ONLY),
    ("post", lambda e: f"/reports/experiments/{e.pk}/generate/", PI_ONLY),
    ("get", lambda e: f"/reports/{e.report}/html/", PI_ONLY),
    ("get", lambda e: f"/reports/{e.report}/bundle/", PI_ONLY),
]


@pytest.mark.parametrize("method, url, allowed", RESULTS_WEB,
                         ids=[f"{m.upper()} {u(SimpleNamespace(pk=1, report=1))}" for m, u, _ in RESULTS_WEB])
@pytest.mark.parametrize("role", ROLES)
def test_results_pages_and_report_downloads_are_the_pis(client, users, reported_experiment, role, method, url,
                                                        allowed, monkeypatch):
    from studyapp.reports import tasks

    monkeypatch.setattr(tasks.generate_report, "delay", lambda report_id: None)
    if role != "anonymous":
        client.force_login(users[role])
    response = getattr(client, method)(url(reported_experiment))
    assert_web_access(response, role, allowed)
