"""Background work under faults, on real worker processes and a private Redis: second deliveries, SIGKILL, Redis down.

Each test runs its own `celery worker` processes against a Redis server of its own (never the shared one),
with a lease of a few seconds so a dead worker's job comes back quickly.
"""

import os
import signal
import subprocess
import time

import pytest
from django.core.management import call_command

from studyapp.clips.models import Clip, Frame
from studyapp.cohort.models import Participant
from studyapp.experiments import services as experiment_services
from studyapp.experiments.models import TrainingRun
from studyapp.ops.models import BackgroundJob
from studyapp.protocol.models import StudySettings
from tests.conftest import _database_url, start_worker, wait_for
from tests.factories import make_hand, phantom_file, upload_file
from tests.studyapp.experiments.conftest import TRAIN_FAST, seed_small_study

LEASE_S = 3


class Workers:
    """Start named workers on the private broker, each with its own log; kill them whole (SIGKILL)."""

    def __init__(self, redis, tmp_path, media):
        self.tmp_path, self.procs = tmp_path, {}
        self.env = {**os.environ, "DATABASE_URL": _database_url(), "DJANGO_SETTINGS_MODULE": "studyapp.settings.test",
                    "MEDIA_ROOT": str(media), "PYTHONUNBUFFERED": "1", "CELERY_BROKER_URL": redis.url,
                    "CELERY_RESULT_BACKEND": redis.url, "CTS_JOB_LEASE_S": str(LEASE_S),
                    "CTS_WORKER_HEARTBEAT_S": "1", "CTS_CHECKPOINT_DIR": str(tmp_path / "checkpoints")}

    def start(self, name: str) -> subprocess.Popen:
        log = open(self.tmp_path / f"{name}.log", "w+")
        proc = start_worker(f"{name}-{os.getpid()}@%h", "default,training", self.env, log)
        proc.log = log
        self.procs[name] = proc
        return proc

    def kill(self, name: str) -> None:
        proc = self.procs.pop(name)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.log.close()

    def log(self, tail: int | None = 3000) -> str:
        texts = {path.name: path.read_text() for path in self.tmp_path.glob("*.log")}
        return "\n".join(f"--- {name}\n{text[-tail:] if tail else text}" for name, text in texts.items())

    def stop_all(self) -> None:
        for name in list(self.procs):
            self.kill(name)


@pytest.fixture
def workers(broker, tmp_path, settings):
    media = tmp_path / "media"
    settings.MEDIA_ROOT = media
    pool = Workers(broker, tmp_path, media)
    yield pool
    pool.stop_all()


def _until(predicate, workers, timeout):
    try:
        return wait_for(predicate, timeout=timeout, interval=0.1)
    except BaseException:
        print(workers.log())
        raise


def _row(model, pk):
    return model.objects.get(pk=pk)


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_extraction_killed_midway_is_finished_once_by_the_next_worker(workers, tmp_path):
    StudySettings.objects.update_or_create(id=1, defaults={"frames_per_clip": 120})
    # Each frame file takes 0.1 s to store on the workers: the extraction lasts seconds, so the kill lands midway.
    workers.env["MEDIA_STORAGE_BACKEND"] = "tests.studyapp.common.slow_storage.SlowFileSystemStorage"
    path, _ = phantom_file(tmp_path, "long.avi", n_frames=240, width=480, height=360)
    first = workers.start("extract-a")
    clip = Clip.objects.get(pk=_upload(path).pk)
    _until(lambda: _row(Clip, clip.pk).extraction_status == "running" and _row(Clip, clip.pk).extraction_done >= 5,
           workers, 120)
    workers.kill("extract-a")
    killed = _row(Clip, clip.pk)
    assert killed.extraction_status == "running" and killed.extraction_done < 120  # the truth: it was cut
    assert first.returncode == -signal.SIGKILL and not Frame.objects.filter(clip=clip).exists()
    workers.start("extract-b")
    _until(lambda: _row(Clip, clip.pk).extraction_status in ("done", "failed"), workers, 180)
    clip.refresh_from_db()
    assert clip.extraction_status == "done", clip.extraction_error
    assert (clip.extraction_done, clip.extraction_total, Frame.objects.filter(clip=clip).count()) == (120, 120, 120)
    files = [f for f in (tmp_path / "media" / "frames").rglob("*.png") if clip.sha256 in str(f)]
    assert len(files) == 120  # deterministic names: the rerun replaced, never doubled


def _upload(path):
    from studyapp.clips import services

    return services.clip_upload(hand=make_hand(), upload=upload_file(path), pixel_spacing_mm=0.25)


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_training_delivered_twice_runs_once_and_survives_its_worker_killed(workers):
    from mlworker.celery import app

    seed_small_study()  # as the resume test of experiments: its validation hands hold both groups
    split = experiment_services.split_lock(split=experiment_services.split_create(name="s", seed=1, test_per_group=3))
    workers.start("train-a")
    workers.start("train-b")
    experiment = experiment_services.experiment_launch(
        split=split, models=["squeezenet1_1"], random_init=True,
        hyperparameters={**TRAIN_FAST, "epochs": 8, "batch_size": 4, "input_size": 32, "checkpoint_every": 1})
    run = experiment.runs.get()
    _until(lambda: _row(TrainingRun, run.pk).epochs_done >= 1, workers, 300)
    holder = _row(TrainingRun, run.pk)
    # The broker delivers the same job again while it runs (as Redis does past its visibility timeout).
    duplicate = app.send_task("experiments.train_model", args=(run.pk,), queue="training")
    dropped = f"experiments.train_model[{duplicate.id}] succeeded"
    _until(lambda: dropped in workers.log(tail=None), workers, 120)
    assert [line for line in workers.log(tail=None).splitlines() if dropped in line][0].endswith("'not claimed'")
    assert _row(TrainingRun, run.pk).lease_token == holder.lease_token  # the holder kept it
    # Now the holder dies; the other worker takes the run over once its lease expired, from the checkpoint.
    _until(lambda: _row(TrainingRun, run.pk).epochs_done >= 2, workers, 300)
    dead = "train-a" if holder.worker.startswith("train-a") else "train-b"
    workers.kill(dead)
    killed_at = _row(TrainingRun, run.pk)
    assert killed_at.status == "running" and killed_at.epochs_done < 8
    _until(lambda: _row(TrainingRun, run.pk).is_finished, workers, 600)
    run.refresh_from_db()
    assert run.status == "done", run.error
    assert not run.worker.startswith(dead) and run.resumed_from_epoch >= 2
    assert [h["epoch"] for h in run.history] == list(range(1, 9))  # every epoch once: nothing doubled, none lost
    assert TrainingRun.objects.count() == 1 and run.lease_expires_at is None


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_demo_seeding_killed_midway_is_finished_by_the_next_worker(workers):
    workers.start("demo-a")
    call_command("seed_demo", "--hands", "4", "--awaiting", "1", "--prospective", "0", "--background")
    job = BackgroundJob.objects.get(kind="seed_demo")
    _until(lambda: _row(BackgroundJob, job.pk).done >= 1, workers, 300)
    workers.kill("demo-a")
    killed = _row(BackgroundJob, job.pk)
    assert killed.status == "running" and 1 <= killed.done < 5
    assert Participant.objects.count() == killed.checkpoint["next"] - 1  # each participant whole, or not at all
    workers.start("demo-b")
    _until(lambda: _row(BackgroundJob, job.pk).status in ("done", "failed"), workers, 600)
    job.refresh_from_db()
    assert job.status == "done", job.error
    assert (job.done, job.total) == (5, 5)
    codes = list(Participant.objects.values_list("study_code", flat=True))
    assert len(codes) == len(set(codes)) and all(code.startswith("DEMO-") for code in codes)
    assert Clip.objects.count() == 5 and all(c.extraction_status == "done" for c in Clip.objects.all())
    assert Frame.objects.count() == 5 * StudySettings.current().frames_per_clip


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_redis_down_under_an_upload_leaves_no_row_stuck_and_a_retry_queues_once(workers, broker, api_for,
                                                                               tmp_path):
    StudySettings.objects.update_or_create(id=1, defaults={"frames_per_clip": 8})
    path, _ = phantom_file(tmp_path, "clip.avi", n_frames=30)
    broker.stop()
    coordinator = api_for("coordinator")
    started = time.monotonic()
    with path.open("rb") as handle:
        response = coordinator.post("/api/clips/", {"hand": make_hand().pk, "file": handle}, format="multipart")
    assert time.monotonic() - started < 30  # a clear answer, not a hung request
    assert response.status_code == 201, response.content
    clip = Clip.objects.get()
    assert clip.extraction_status == "failed" and "task queue could not be reached" in clip.extraction_error
    assert coordinator.post(f"/api/clips/{clip.pk}/retry-extraction/").json()["extraction_status"] == "failed"
    broker.start()  # Redis is back
    workers.start("after-outage")
    body = coordinator.post(f"/api/clips/{clip.pk}/retry-extraction/").json()
    assert body["extraction_status"] == "queued" and body["extraction_error"] == ""
    _until(lambda: _row(Clip, clip.pk).extraction_status in ("done", "failed"), workers, 120)
    clip.refresh_from_db()
    assert clip.extraction_status == "done", clip.extraction_error
    assert Frame.objects.filter(clip=clip).count() == 8 and Clip.objects.count() == 1
