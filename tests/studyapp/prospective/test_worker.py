"""End to end on a real worker with a tiny trained model: the PI freezes it, hands without EPS are predicted
(at the freeze, and when a hand's ROIs are confirmed later), the values equal the direct computation, and the
coordinator's EPS scores them."""

import numpy as np
import pytest

from studyapp.experiments import services as experiment_services, training
from studyapp.experiments.prediction import predict_clip
from studyapp.ops.models import BackgroundJob
from studyapp.prospective.jobs import PREDICT_JOB
from studyapp.prospective.models import ProspectiveOutcome, ProspectivePrediction
from tests.conftest import wait_for
from tests.studyapp.experiments.conftest import TRAIN_FAST, seed_small_study
from tests.studyapp.prospective.conftest import annotate, pending_hand


def _predicted(hand, worker):
    def done():
        job = BackgroundJob.objects.filter(kind=PREDICT_JOB, params__hand=hand.pk).order_by("-pk").first()
        assert job is None or job.status != "failed", job.error
        return ProspectivePrediction.objects.filter(hand=hand).first()
    return wait_for(done, timeout=180, interval=0.2, worker=worker)


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_freeze_predict_blinded_and_score_on_a_real_worker(celery_worker_process, api_for, users, settings,
                                                           tmp_path, monkeypatch):
    settings.MEDIA_ROOT = celery_worker_process.media_root
    settings.CTS_CHECKPOINT_DIR = tmp_path / "ckpt"
    monkeypatch.setattr(experiment_services, "queue_run", lambda run_id: None)
    seed_small_study()
    split = experiment_services.split_lock(split=experiment_services.split_create(name="main", seed=1,
                                                                                  test_per_group=3))
    run = experiment_services.experiment_launch(split=split, name="tiny", models=["squeezenet1_1"],
                                                random_init=True, hyperparameters=TRAIN_FAST).runs.get()
    assert training.run_train(run_id=run.pk, task_id="t", worker="w") == "done"
    run.refresh_from_db()
    first = pending_hand(tmp_path, code="PROS-1")
    later = pending_hand(tmp_path, code="PROS-2", annotated=False)

    response = api_for("pi").post("/api/prospective/models/", {"run": run.pk}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["weights_sha256"] == run.weights_sha256 and response.json()["active"] is True
    prediction = _predicted(first, celery_worker_process)
    direct = predict_clip(run=run, clip=first.clip)
    assert prediction.probability == pytest.approx(np.mean([f["probability"] for f in direct["frames"]]), abs=1e-6)
    assert prediction.predicted_label == int(prediction.probability >= run.evaluation["threshold"])
    assert [f["frame"] for f in prediction.frames] == [f["frame"] for f in direct["frames"]]
    assert prediction.weights_sha256 == run.weights_sha256 and prediction.clip == first.clip
    job = BackgroundJob.objects.get(kind=PREDICT_JOB, params__hand=first.pk)
    assert job.result == {"prediction": prediction.pk}  # the job row carries no value to unblind anyone

    annotate(later.clip, users["annotator"])  # the ROI hook queues the hand confirmed after the freeze
    assert _predicted(later, celery_worker_process).model == prediction.model

    coordinator = api_for("coordinator")
    (sealed, _) = coordinator.get("/api/prospective/predictions/").json()
    assert sealed["probability"] is None
    response = coordinator.post("/api/eps-exams/", {"hand": first.pk, "exam_date": "2026-06-01", "dml_ms": 5.2,
                                                    "sncv_m_s": 38.0}, format="json")
    assert response.status_code == 201, response.content
    outcome = ProspectiveOutcome.objects.get(prediction=prediction)
    assert (outcome.label, outcome.included) == (1, True)
    revealed = {row["hand"]: row for row in coordinator.get("/api/prospective/predictions/").json()}
    assert revealed[first.pk]["probability"] == pytest.approx(prediction.probability)
    assert revealed[later.pk]["probability"] is None
