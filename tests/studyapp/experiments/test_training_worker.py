"""Training on real worker processes: launch from the API, and resume after a worker is killed."""

import os
import signal

import pytest

from studyapp.experiments import services
from studyapp.experiments.models import TrainingRun
from tests.conftest import start_worker, wait_for
from tests.studyapp.experiments.conftest import TRAIN_FAST, seed_small_study


def finished(experiment_id):
    runs = TrainingRun.objects.filter(experiment_id=experiment_id)
    return runs.exists() and all(run.is_finished for run in runs)


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_pi_launches_three_models_and_reads_results(celery_worker_process, api_for, settings, tmp_path):
    settings.MEDIA_ROOT = celery_worker_process.media_root
    seed_small_study()
    pi = api_for("pi")
    split = pi.post("/api/splits/", {"name": "main", "seed": 2, "test_per_group": 3}, format="json").json()
    assert pi.post(f"/api/splits/{split['id']}/lock/").status_code == 200
    response = pi.post("/api/experiments/", {"split": split["id"], "random_init": True,
                                             "hyperparameters": TRAIN_FAST}, format="json")
    assert response.status_code == 201, response.content
    experiment_id = response.json()["id"]
    wait_for(lambda: finished(experiment_id), timeout=600, interval=1, worker=celery_worker_process)
    body = pi.get(f"/api/experiments/{experiment_id}/").json()
    assert {run["status"] for run in body["runs"]} == {"done"}, [run["error"] for run in body["runs"]]
    for run in body["runs"]:
        assert run["evaluation"]["frame"]["metrics"]["auc"] is not None
        assert run["evaluation"]["hand"]["ci"]["resampling_hands"]["auc"]["low"] is not None
    # Each pool process set its torch threads from the cores and --concurrency=1, and the run says so.
    from mlworker.threads import available_cpus

    for runtime in TrainingRun.objects.filter(experiment_id=experiment_id).values_list("runtime", flat=True):
        assert runtime["threads"]["worker_concurrency"] == 1
        assert runtime["torch_threads"] == runtime["threads"]["torch_threads"] == available_cpus()
    pairs = body["comparison"]["delong"]["pairs"]
    assert len(pairs) == 3 and all(0 <= pair["hand"]["p_value"] <= 1 for pair in pairs)
    assert len(body["comparison"]["csa_baseline"]["delong_vs_models"]) == 3


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_killed_worker_resumes_training_from_its_checkpoint(celery_worker_process, settings, tmp_path):
    settings.MEDIA_ROOT = celery_worker_process.media_root
    settings.CTS_TRAINING_QUEUE = f"resume-test-{os.getpid()}"
    seed_small_study()
    split = services.split_lock(split=services.split_create(name="s", seed=1, test_per_group=3))
    experiment = services.experiment_launch(
        split=split, models=["squeezenet1_1"], random_init=True,
        hyperparameters={**TRAIN_FAST, "epochs": 12, "batch_size": 4, "input_size": 48, "checkpoint_every": 1})
    run = experiment.runs.get()
    env = {**celery_worker_process.env, "CTS_CHECKPOINT_DIR": str(tmp_path / "ckpt"),
           "CTS_TRAINING_QUEUE": settings.CTS_TRAINING_QUEUE}
    name = f"resume-{os.getpid()}@%h"
    with open(tmp_path / "worker1.log", "w+") as log:
        worker = start_worker(name, settings.CTS_TRAINING_QUEUE, env, log)
        wait_for(lambda: TrainingRun.objects.get(pk=run.pk).epochs_done >= 2, timeout=300, interval=0.05)
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()
    killed_at = TrainingRun.objects.get(pk=run.pk)
    assert killed_at.status == "running" and killed_at.epochs_done < 12
    with open(tmp_path / "worker2.log", "w+") as log:
        worker = start_worker(name, settings.CTS_TRAINING_QUEUE, env, log)
        try:
            wait_for(lambda: TrainingRun.objects.get(pk=run.pk).is_finished, timeout=300, interval=0.5)
        finally:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()
    run.refresh_from_db()
    assert run.status == "done", run.error
    assert run.resumed_from_epoch >= killed_at.epochs_done >= 2
    assert [h["epoch"] for h in run.history] == list(range(1, 13))


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_cancel_from_the_api_stops_a_running_model_within_its_epoch(celery_worker_process, api_for, settings):
    settings.MEDIA_ROOT = celery_worker_process.media_root
    seed_small_study()
    split = services.split_lock(split=services.split_create(name="s", seed=1, test_per_group=3))
    experiment = services.experiment_launch(
        split=split, models=["efficientnet_b0"], random_init=True,
        hyperparameters={**TRAIN_FAST, "epochs": 50, "batch_size": 2, "input_size": 96})
    run = experiment.runs.get()
    wait_for(lambda: TrainingRun.objects.get(pk=run.pk).status == "running", timeout=120, interval=0.2,
             worker=celery_worker_process)
    assert api_for("pi").post(f"/api/models/{run.pk}/cancel/").status_code == 200
    wait_for(lambda: TrainingRun.objects.get(pk=run.pk).is_finished, timeout=120, interval=0.5,
             worker=celery_worker_process)
    run.refresh_from_db()
    assert run.status == "cancelled" and run.epochs_done < 50
    experiment.refresh_from_db()
    assert experiment.comparison is not None and experiment.comparison["models"] == []
