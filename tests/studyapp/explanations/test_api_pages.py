"""The API and the gallery over explanations of a tiny trained run (explained in-process)."""

import pytest

from studyapp.explanations import explaining, services
from studyapp.explanations.models import FrameExplanation
from tests.studyapp.explanations.conftest import FAST_PARAMS

pytestmark = pytest.mark.django_db


@pytest.fixture
def explained(trained_run, monkeypatch):
    monkeypatch.setattr(services, "queue_job", lambda job_id: None)
    for job in services.jobs_queue(run=trained_run, methods=["occlusion", "gradcam"],
                                   params={"occlusion": FAST_PARAMS["occlusion"]}):
        assert explaining.job_run(job_id=job.pk, task_id=f"t{job.pk}", worker="w") == "done"
    return trained_run


def test_api_lists_filters_and_summarises(explained, api_for, client_for):
    run = explained
    api = api_for("coordinator")
    body = api.get(f"/api/frame-explanations/?run={run.pk}&method=gradcam").json()
    n_test = len(run.predictions["frame_ids"])
    assert body["count"] == n_test
    row = body["results"][0]
    assert {"probability", "frame_outcome", "hand_outcome", "shares", "outline_source", "group", "stage"} <= set(row)
    assert set(row["files"]) == {"crop", "heatmap", "overlay", "attribution"}
    for outcome in ("TP", "FP", "FN", "TN"):
        expected = FrameExplanation.objects.filter(job__run=run, job__method="gradcam", frame_outcome=outcome).count()
        got = api.get(f"/api/frame-explanations/?run={run.pk}&method=gradcam&frame_outcome={outcome}").json()
        assert got["count"] == expected
    hand = row["hand"]
    assert api.get(f"/api/frame-explanations/?hand={hand}&method=occlusion").json()["count"] == 6
    stage = row["stage"]
    by_stage = api.get(f"/api/frame-explanations/?experiment={run.experiment_id}&stage={stage}").json()["count"]
    assert by_stage == FrameExplanation.objects.filter(hand__stage=stage).count() > 0

    image = client_for("coordinator").get(row["files"]["heatmap"])
    assert image.status_code == 200 and image["Content-Type"] == "image/png"
    assert b"".join(image.streaming_content).startswith(b"\x89PNG")

    summary = api.get(f"/api/explanation-summaries/?experiment={run.experiment_id}").json()
    assert summary["by"] == ["model", "method"]
    groups = {(s["model"], s["method"]): s for s in summary["summaries"]}
    assert set(groups) == {("squeezenet1_1", "occlusion"), ("squeezenet1_1", "gradcam")}
    for s in groups.values():
        assert s["n_frames"] == n_test and s["n_without_outline"] == 0, s
        # a frame is measured, or counted as having no positive attribution (a flat map of an untrained model)
        assert s["n_measured"] + s["n_without_positive_mass"] == n_test
        if s["n_measured"]:
            assert s["nerve"]["low"] <= s["nerve"]["estimate"] <= s["nerve"]["high"]
        assert s["sanity"]["passed"] in (True, False)
    assert groups[("squeezenet1_1", "occlusion")]["n_measured"] > 0
    deeper = api.get(f"/api/explanation-summaries/?run={run.pk}&by=method,frame_outcome,stage").json()
    assert sum(s["n_frames"] for s in deeper["summaries"]) == 2 * n_test
    assert api.get("/api/explanation-summaries/").status_code == 400
    assert api.get(f"/api/explanation-summaries/?run={run.pk}&by=colour").status_code == 400


def test_pi_queues_and_cancels_through_the_api(explained, api_for, client_for):
    pi = api_for("pi")
    response = pi.post("/api/explanation-jobs/", {"run": explained.pk, "methods": ["lime"],
                                                  "params": {"lime": {"num_samples": 20}}}, format="json")
    assert response.status_code == 201, response.content
    job = response.json()[0]
    assert job["status"] == "queued" and job["params"]["num_samples"] == 20
    again = pi.post("/api/explanation-jobs/", {"run": explained.pk, "methods": ["lime"]}, format="json")
    assert again.status_code == 400 and "already" in str(again.json())
    polled = client_for("pi").get(f"/explanations/experiments/{explained.experiment_id}/?part=jobs",
                                  HTTP_HX_REQUEST="true").content.decode()
    assert 'hx-trigger="every 2s"' in polled and "Queued" in polled  # progress is polled while a job is open
    cancelled = pi.post(f"/api/explanation-jobs/{job['id']}/cancel/").json()
    assert cancelled["status"] == "cancelled"
    bad = pi.post("/api/explanation-jobs/", {"run": explained.pk, "methods": ["lime"],
                                             "params": {"lime": {"num_samples": -1}}}, format="json")
    assert bad.status_code == 400 and "num_samples" in str(bad.json())


def test_gallery_shows_methods_side_by_side_filters_and_the_summary(explained, client_for):
    run = explained
    pi = client_for("pi")
    experiment_page = pi.get(f"/experiments/{run.experiment_id}/").content.decode()
    assert f'href="/explanations/experiments/{run.experiment_id}/"' in experiment_page
    html = pi.get(f"/explanations/experiments/{run.experiment_id}/").content.decode()
    n_test = len(run.predictions["frame_ids"])
    assert f"{n_test} frames of this selection" in html
    assert html.count('class="xp-frame"') == 12  # one page
    assert "Occlusion" in html and "Grad-CAM" in html and "LIME" in html and 'id="opacity"' in html
    assert html.count("not explained</div>") == 12  # LIME's column, empty on every frame
    assert 'id="summary"' in html and "SqueezeNet 1.1" in html
    assert "squeezenet1_1<" not in html and "· squeezenet1_1" not in html  # labels, not internal names
    assert '<option value="squeezenet1_1" >SqueezeNet 1.1</option>' in html
    fn = FrameExplanation.objects.filter(job__run=run, hand_outcome="FN").values_list("frame_id", flat=True)
    filtered = pi.get(f"/explanations/experiments/{run.experiment_id}/?hand_outcome=FN&method=gradcam").content.decode()
    assert f"{len(set(fn))} frame" in filtered
    assert filtered.count("not explained</div>") == 0
    polled = pi.get(f"/explanations/experiments/{run.experiment_id}/?part=jobs", HTTP_HX_REQUEST="true")
    assert 'id="explanation-jobs"' in polled.content.decode() and "xp-frame" not in polled.content.decode()
    assert "hx-trigger" not in polled.content.decode()  # every job is finished: no more polling
    # an annotator never sees it; a coordinator reads it
    assert client_for("annotator").get(f"/explanations/experiments/{run.experiment_id}/").status_code == 403


def test_prediction_page_links_the_gallery_once_the_model_is_explained(explained, client_for):
    from studyapp.clips.models import Clip

    clip = Clip.objects.get(hand_id=explained.evaluation["hand"]["hand_ids"][0])
    from studyapp.experiments.prediction import prediction_run

    pi = client_for("pi")
    response = pi.post(f"/experiments/clips/{clip.pk}/predict/", {"model": explained.pk})
    job_id = int(response["Location"].rsplit("=", 1)[1])
    prediction_run(job_id=job_id)
    html = pi.get(response["Location"]).content.decode()
    assert 'id="heatmaps-gallery"' in html and f"/explanations/experiments/{explained.experiment_id}/" in html
    assert 'id="no-heatmaps"' not in html


def test_gallery_flags_a_method_that_failed_the_sanity_check(explained, client_for):
    from studyapp.explanations.models import ExplanationJob

    ExplanationJob.objects.filter(run=explained, method="gradcam").update(
        sanity={"passed": False, "median": 0.97, "reason": "maps barely change", "spearman": [0.97]})
    html = client_for("pi").get(f"/explanations/experiments/{explained.experiment_id}/").content.decode()
    assert html.count("does not reflect the model") >= 2  # jobs table and summary


def test_prediction_endpoint_returns_the_gallery_s_heatmaps_on_request(explained, api_for):
    import base64

    from django.core.files.storage import default_storage

    from studyapp.clips.models import Clip

    run = explained
    row = FrameExplanation.objects.filter(job__run=run, job__method="occlusion").select_related("frame").first()
    clip = Clip.objects.get(pk=row.frame.clip_id)
    from tests.jobs import run_job

    pi = api_for("pi")
    plain = run_job(pi, pi.post(f"/api/models/{run.pk}/predict/", {"clip": clip.pk}, format="json"))["result"]
    assert "heatmaps" not in plain["frames"][0]
    job = run_job(pi, pi.post(f"/api/models/{run.pk}/predict/", {"clip": clip.pk, "heatmaps": ["occlusion", "gradcam"]},
                              format="json"))
    assert job["status"] == "done", job["error"]
    frames = {f["frame"]: f for f in job["result"]["frames"]}
    assert all(set(f["heatmaps"]) == {"occlusion", "gradcam"} for f in frames.values())
    png = base64.b64decode(frames[row.frame_id]["heatmaps"]["occlusion"])
    with default_storage.open(row.heatmap.name) as stored:
        assert png == stored.read()  # same function, parameters and crop as the stored explanation
    bad = pi.post(f"/api/models/{run.pk}/predict/", {"clip": clip.pk, "heatmaps": ["saliency"]}, format="json")
    assert bad.status_code == 400 and "heatmaps" in bad.json()
