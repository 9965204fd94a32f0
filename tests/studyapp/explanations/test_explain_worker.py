"""End to end on a real worker: a PI queues explanations of a tiny run; the worker writes maps the API and
the gallery serve."""

import pytest

from studyapp.experiments import services as experiment_services
from studyapp.explanations.models import ExplanationJob
from tests.conftest import wait_for
from tests.studyapp.experiments.conftest import seed_small_study
from tests.studyapp.explanations.conftest import FAST_PARAMS, train_tiny_run


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_worker_explains_a_run_and_the_gallery_serves_it(celery_worker_process, api_for, client_for, settings,
                                                         tmp_path, monkeypatch):
    settings.MEDIA_ROOT = celery_worker_process.media_root
    settings.CTS_CHECKPOINT_DIR = tmp_path / "ckpt"
    monkeypatch.setattr(experiment_services, "queue_run", lambda run_id: None)
    seed_small_study()
    run = train_tiny_run()  # trained in-process; its weights are in the worker's media root
    from studyapp.protocol.models import StudySettings
    StudySettings.objects.filter(id=1).update(explain_frames_occlusion=2, explain_frames_lime=1,
                                              explain_frames_gradcam=3)
    response = api_for("pi").post("/api/explanation-jobs/", {"run": run.pk, "params": FAST_PARAMS}, format="json")
    assert response.status_code == 201, response.content
    wait_for(lambda: all(job.is_finished for job in ExplanationJob.objects.filter(run=run)), timeout=300,
             interval=0.5, worker=celery_worker_process)
    jobs = {job.method: job for job in ExplanationJob.objects.filter(run=run)}
    assert {m: j.status for m, j in jobs.items()} == {"occlusion": "done", "lime": "done", "gradcam": "done"}, \
        {m: j.error for m, j in jobs.items()}
    n_hands = len(run.evaluation["hand"]["hand_ids"])
    assert {m: j.frames_done for m, j in jobs.items()} == {"occlusion": 2 * n_hands, "lime": n_hands,
                                                           "gradcam": 3 * n_hands}
    assert all(j.sanity and "passed" in j.sanity for j in jobs.values()) and jobs["lime"].params["num_samples"] == 40

    coordinator = api_for("coordinator")
    rows = coordinator.get(f"/api/frame-explanations/?run={run.pk}&method=lime").json()["results"]
    assert len(rows) == n_hands
    client = client_for("pi")
    for kind in ("crop", "heatmap", "overlay"):
        image = client.get(rows[0]["files"][kind])
        assert image.status_code == 200 and b"".join(image.streaming_content).startswith(b"\x89PNG")
    html = client.get(f"/explanations/experiments/{run.experiment_id}/").content.decode()
    assert "sanity check" in html or "does not reflect the model" in html
    assert html.count('class="xp-heat"') >= n_hands
