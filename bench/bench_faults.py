"""Benchmark of faults: kill the worker at random moments of a small training run and of a frame extraction.

Run with `source .env.sh && .venv/bin/python bench/bench_faults.py [--kills 4]` (needs PostgreSQL at
DATABASE_URL and `redis-server` on the PATH). It makes a throwaway database next to DATABASE_URL's and a
Redis server of its own on a free port, and removes both at the end.

Each trial queues one job, starts a worker, SIGKILLs the whole worker (main process and child) at a random
moment, starts a fresh worker under another name and waits. It prints, per kind of job: trials, runs
finished, duplicated (an epoch trained twice into the history, a frame row or file doubled) and lost (not
finished in time). Goal: all finished, none duplicated, none lost.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
LEASE_S = 2


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait(predicate, timeout: float, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return None


class Harness:
    """A throwaway database, a private Redis, and workers started and killed on demand."""

    def __init__(self, folder: Path):
        import psycopg

        self.folder = folder
        base = os.environ["DATABASE_URL"]
        self.db_name = f"bench_faults_{os.getpid()}"
        self.admin_url = base
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.db_name}"')
        port = free_port()
        self.redis = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                       "--appendonly", "no", "--dir", str(folder)],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        broker = f"redis://127.0.0.1:{port}/0"
        self.env = {**os.environ, "DATABASE_URL": base.rsplit("/", 1)[0] + f"/{self.db_name}",
                    "CELERY_BROKER_URL": broker, "CELERY_RESULT_BACKEND": broker, "MEDIA_ROOT": str(folder / "media"),
                    "CTS_CHECKPOINT_DIR": str(folder / "checkpoints"), "CTS_JOB_LEASE_S": str(LEASE_S),
                    "CTS_WORKER_HEARTBEAT_S": "1", "DJANGO_SETTINGS_MODULE": "studyapp.settings.test",
                    "PYTHONUNBUFFERED": "1"}
        os.environ.update(self.env)
        wait(lambda: subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True,
                                    text=True).stdout.strip() == "PONG", 20)
        self.count = 0

    def setup_django(self) -> None:
        import django
        from django.core.management import call_command

        django.setup()
        call_command("migrate", verbosity=0)

    def start(self) -> subprocess.Popen:
        self.count += 1
        log = open(self.folder / f"worker{self.count}.log", "w")
        return subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "mlworker.celery", "worker", "--loglevel=INFO", "--concurrency=1",
             "--pool=prefork", "-Q", "default,training", "--without-gossip", "--without-mingle",
             "-n", f"fault{self.count}-{os.getpid()}@%h"],
            cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    @staticmethod
    def kill(proc: subprocess.Popen) -> None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

    def close(self) -> None:
        import psycopg
        from django.db import connections

        connections.close_all()
        self.redis.terminate()
        self.redis.wait()
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)')


def trial(harness: Harness, queue_job, running, finished, max_kill_s: float, timeout: float):
    """Queue a job, kill its worker at a random moment while it runs, let a fresh worker finish it."""
    first = harness.start()
    job = queue_job()
    wait(lambda: running(job), 300, 0.05)
    time.sleep(random.uniform(0, max_kill_s))
    harness.kill(first)
    second = harness.start()
    try:
        return job, wait(lambda: finished(job), timeout, 0.5) is not None
    finally:
        harness.kill(second)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=3, help="trials (one kill each) per kind of job")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    random.seed(args.seed)
    with tempfile.TemporaryDirectory(prefix="bench-faults-") as tmp:
        harness = Harness(Path(tmp))
        try:
            harness.setup_django()
            rows = [run_extraction(harness, args.kills, Path(tmp)), run_training(harness, args.kills)]
        finally:
            harness.close()
    print(f"{'job':<12}{'trials':>8}{'finished':>10}{'duplicated':>12}{'lost':>6}")
    for name, trials, done, duplicated, lost in rows:
        print(f"{name:<12}{trials:>8}{done:>10}{duplicated:>12}{lost:>6}")


def run_extraction(harness: Harness, kills: int, tmp: Path):
    from django.core.files import File

    from mlworker.phantom import PhantomConfig, generate_clip, write_video
    from studyapp.clips import services
    from studyapp.clips.models import Clip, Frame
    from studyapp.cohort import services as cohort_services
    from studyapp.protocol.models import StudySettings

    n_frames = 120
    StudySettings.objects.update_or_create(id=1, defaults={"frames_per_clip": n_frames})
    import datetime as dt

    participant = cohort_services.participant_create(study_code="FAULT-001", sex="female", age=50,
                                                     recruitment="patient", enrolled_on=dt.date(2026, 1, 15))
    hand = cohort_services.hand_create(participant=participant, side="right")
    done = duplicated = lost = 0
    for attempt in range(kills):
        phantom = generate_clip("control", attempt, PhantomConfig(width=480, height=360, n_frames=240))
        path = write_video(phantom, tmp / f"clip{attempt}.avi")

        def queue():
            with path.open("rb") as handle:
                return services.clip_upload(hand=hand, upload=File(handle, name=path.name), pixel_spacing_mm=0.25)

        clip, finished = trial(harness, queue,
                               running=lambda c: Clip.objects.filter(pk=c.pk, extraction_status="running").exists(),
                               finished=lambda c: Clip.objects.filter(pk=c.pk, extraction_status="done").exists(),
                               max_kill_s=3.0, timeout=240)
        files = list((tmp / "media" / "frames").rglob(f"*{clip.sha256}*/*.png"))
        rows = Frame.objects.filter(clip=clip).count()
        done += finished
        lost += not finished
        duplicated += rows > n_frames or len(files) > n_frames
    return "extraction", kills, done, duplicated, lost


def run_training(harness: Harness, kills: int):
    from mlworker.phantom import PhantomConfig
    from studyapp.demo.services import demo_seed
    from studyapp.experiments import services
    from studyapp.experiments.models import TrainingRun
    from studyapp.protocol.models import StudySettings

    StudySettings.objects.update_or_create(id=1, defaults={"frames_per_clip": 6})
    demo_seed(n_hands=16, config=PhantomConfig(width=160, height=120, n_frames=6, pixel_spacing_mm=0.25),
              second_rater_every=1000)
    # As the training worker tests: this split's validation hands hold both groups (a finite AUC).
    split = services.split_lock(split=services.split_create(name="faults", seed=1, test_per_group=3))
    epochs = 6
    done = duplicated = lost = 0
    for attempt in range(kills):
        def queue():
            return services.experiment_launch(
                split=split, name=f"fault {attempt}", models=["squeezenet1_1"], random_init=True,
                hyperparameters={"epochs": epochs, "batch_size": 4, "input_size": 32, "lr": 1e-3,
                                 "early_stopping_patience": None, "checkpoint_every": 1}).runs.get()

        run, finished = trial(harness, queue,
                              running=lambda r: TrainingRun.objects.filter(pk=r.pk, status="running").exists(),
                              finished=lambda r: TrainingRun.objects.filter(pk=r.pk, status="done").exists(),
                              max_kill_s=12.0, timeout=600)
        run.refresh_from_db()
        done += finished
        lost += not finished
        duplicated += [h["epoch"] for h in run.history] != list(range(1, epochs + 1)) and finished
    return "training", kills, done, duplicated, lost


if __name__ == "__main__":
    main()
