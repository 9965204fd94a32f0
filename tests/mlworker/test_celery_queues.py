"""One worker per queue, as scripts/run.sh and the compose file run them: frame extraction (the default
queue) completes while a training run occupies the training worker, and both workers report alive."""

import os
import signal
import subprocess

import pytest

from studyapp.clips import services as clips
from studyapp.clips.models import Clip
from studyapp.experiments import services as experiments
from studyapp.experiments.models import TrainingRun
from studyapp.protocol.models import StudySettings
from tests.conftest import _database_url, start_worker, wait_for
from tests.factories import make_hand, phantom_file, upload_file
from tests.studyapp.experiments.conftest import TRAIN_FAST, seed_small_study


def _stop(worker) -> None:
    os.killpg(worker.pid, signal.SIGTERM)
    try:
        worker.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_extraction_completes_while_a_training_run_occupies_the_training_worker(api_for, settings, tmp_path, broker):
    # A Redis of this test's own: no other worker of the suite (a session worker on the shared broker) takes
    # its extraction.
    # Real routing (extraction to "default", training to CTS_TRAINING_QUEUE); a training queue of this test's
    # own, so no other worker of the suite trains its run.
    settings.CTS_TRAINING_QUEUE = f"busy-training-{os.getpid()}"
    settings.CTS_WORKER_HEARTBEAT_S = 1
    seed_small_study()
    split = experiments.split_lock(split=experiments.split_create(name="s", seed=1, test_per_group=3))
    env = {**os.environ, "DATABASE_URL": _database_url(), "DJANGO_SETTINGS_MODULE": "studyapp.settings.test",
           "MEDIA_ROOT": str(settings.MEDIA_ROOT), "PYTHONUNBUFFERED": "1", "CTS_WORKER_HEARTBEAT_S": "1",
           "CTS_CHECKPOINT_DIR": str(tmp_path / "checkpoints"), "CTS_TRAINING_QUEUE": settings.CTS_TRAINING_QUEUE,
           "CELERY_BROKER_URL": broker.url, "CELERY_RESULT_BACKEND": broker.url}
    with open(tmp_path / "default.log", "w+") as default_log, open(tmp_path / "training.log", "w+") as training_log:
        default = start_worker(f"default-{os.getpid()}@%h", settings.CELERY_TASK_DEFAULT_QUEUE, env, default_log)
        training = start_worker(f"training-{os.getpid()}@%h", settings.CTS_TRAINING_QUEUE, env, training_log)
        default.log, training.log = default_log, training_log
        try:
            experiment = experiments.experiment_launch(
                split=split, models=["squeezenet1_1"], random_init=True,
                hyperparameters={**TRAIN_FAST, "epochs": 1000, "batch_size": 4, "input_size": 32})
            run = experiment.runs.get()
            wait_for(lambda: TrainingRun.objects.get(pk=run.pk).epochs_done >= 1, timeout=60, interval=0.2,
                     worker=training)

            # The training worker's only process is busy, yet its heartbeat says it is alive.
            health = api_for("pi").get("/api/health/").json()
            assert health["queues"]["training"]["alive"] and health["queues"]["default"]["alive"], health
            assert [name.split("@")[0] for name in health["queues"]["training"]["workers"]] == [
                f"training-{os.getpid()}"]

            StudySettings.objects.update_or_create(id=1, defaults={"frames_per_clip": 6})
            path, _ = phantom_file(tmp_path, "clip.avi", n_frames=12)
            clip = clips.clip_upload(hand=make_hand(study_code="Q-1"), upload=upload_file(path),
                                     pixel_spacing_mm=0.25)
            extracted = wait_for(lambda: (row := Clip.objects.get(pk=clip.pk)).extraction_status in ("done", "failed")
                                 and row, timeout=30, interval=0.1, worker=default)
            assert extracted.extraction_status == "done", extracted.extraction_error
            assert extracted.frames.count() == 6
            still = TrainingRun.objects.get(pk=run.pk)
            assert still.status == "running" and still.epochs_done < 1000
            assert still.worker.startswith(f"training-{os.getpid()}@")

            experiments.run_cancel(run=still)
            wait_for(lambda: TrainingRun.objects.get(pk=run.pk).is_finished, timeout=30, interval=0.2,
                     worker=training)
            assert TrainingRun.objects.get(pk=run.pk).status == "cancelled"
        finally:
            _stop(default)
            _stop(training)

