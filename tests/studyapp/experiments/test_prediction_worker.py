"""Prediction on a real worker: queued by the API (202), followed by polling, equal to the direct computation."""

import pytest

from studyapp.clips.models import Clip
from studyapp.experiments import services, training
from studyapp.experiments.prediction import predict_clip
from tests.conftest import wait_for
from tests.studyapp.experiments.conftest import TRAIN_FAST, seed_small_study


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_prediction_runs_on_the_worker_and_equals_the_direct_one(celery_worker_process, api_for, settings,
                                                                 tmp_path, monkeypatch):
    settings.MEDIA_ROOT = celery_worker_process.media_root
    settings.CTS_CHECKPOINT_DIR = tmp_path / "ckpt"
    monkeypatch.setattr(services, "queue_run", lambda run_id: None)
    seed_small_study()
    split = services.split_lock(split=services.split_create(name="main", seed=1, test_per_group=3))
    run = services.experiment_launch(split=split, name="tiny", models=["squeezenet1_1"], random_init=True,
                                     hyperparameters=TRAIN_FAST).runs.get()
    assert training.run_train(run_id=run.pk, task_id="t", worker="w") == "done"
    run.refresh_from_db()
    clip = Clip.objects.get(hand_id=run.evaluation["hand"]["hand_ids"][0])

    pi = api_for("pi")
    response = pi.post(f"/api/models/{run.pk}/predict/", {"clip": clip.pk}, format="json")
    assert response.status_code == 202, response.content
    assert response.json()["status"] == "queued"
    url = response.json()["url"]
    job = wait_for(lambda: (lambda j: j if j["status"] in ("done", "failed") else None)(pi.get(url).json()),
                   timeout=180, interval=0.1, worker=celery_worker_process)
    assert job["status"] == "done", job["error"]
    direct = predict_clip(run=run, clip=clip)
    frames = job["result"]["frames"]
    assert [(f["frame"], f["index"]) for f in frames] == [(f["frame"], f["index"]) for f in direct["frames"]]
    assert [f["probability"] for f in frames] == pytest.approx([f["probability"] for f in direct["frames"]], abs=1e-6)
    assert job["result"]["hand_probability"] == pytest.approx(direct["hand_probability"], abs=1e-6)
    assert job["result"]["hand_probability"] == pytest.approx(run.evaluation["hand"]["probabilities"][0], abs=1e-5)
    assert (job["done"], job["total"]) == (len(frames), len(frames)) == (clip.frames.count(),) * 2
