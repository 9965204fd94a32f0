"""A worker's own heartbeat and what /api/health/ makes of it."""

import os
import signal
import subprocess
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from studyapp.ops.liveness import freshness_window
from studyapp.ops.models import WorkerHeartbeat
from studyapp.ops.services import worker_heartbeat_record
from tests.conftest import start_worker, wait_for


@pytest.mark.django_db
def test_health_reports_each_worker_and_each_queue(api_for, settings):
    settings.CTS_WORKER_HEARTBEAT_S = 10
    worker_heartbeat_record(hostname="default@web1", queues=["default"])
    worker_heartbeat_record(hostname="training@gpu1", queues=["training"])
    WorkerHeartbeat.objects.filter(hostname="training@gpu1").update(
        seen_at=timezone.now() - freshness_window(10) - timedelta(seconds=1))
    health = api_for("pi").get("/api/health/").json()
    assert health["database"] == "ok" and health["heartbeat_interval_s"] == 10
    assert [(w["hostname"], w["queues"], w["alive"]) for w in health["workers"]] == [
        ("default@web1", ["default"], True), ("training@gpu1", ["training"], False)]
    assert health["queues"] == {"default": {"queue": "default", "alive": True, "workers": ["default@web1"]},
                                "training": {"queue": "training", "alive": False, "workers": []}}
    assert health["worker"]["hostname"] == "default@web1" and health["worker"]["alive"] is True


@pytest.mark.django_db
def test_health_with_no_worker_ever_seen(api_for):
    health = api_for("pi").get("/api/health/").json()
    assert health["worker"] == {"last_seen": None, "hostname": None, "alive": False}
    assert health["workers"] == [] and not health["queues"]["default"]["alive"]


@pytest.mark.django_db
def test_health_tells_each_role_what_it_needs_and_nobody_else_the_host_names(api_for, settings):
    worker_heartbeat_record(hostname="default@web1", queues=["default"])
    anonymous = api_for("anonymous").get("/api/health/")
    assert anonymous.status_code == 200 and anonymous.json() == {"status": "degraded"}  # no training worker
    for role in ("coordinator", "annotator", "norole"):
        health = api_for(role).get("/api/health/").json()
        assert health == {"status": "degraded", "database": "ok",
                          "queues": {"default": {"queue": "default", "alive": True},
                                     "training": {"queue": "training", "alive": False}}}, role
    worker_heartbeat_record(hostname="training@gpu1", queues=["training"])
    assert api_for("anonymous").get("/api/health/").json() == {"status": "ok"}
    for role in ("pi", "admin"):
        health = api_for(role).get("/api/health/").json()
        assert health["status"] == "ok" and {w["hostname"] for w in health["workers"]} == {"default@web1",
                                                                                          "training@gpu1"}


@pytest.mark.django_db
def test_only_those_who_look_after_workers_may_queue_a_ping(api_for, monkeypatch):
    from studyapp.ops import api

    monkeypatch.setattr(api.heartbeat, "delay", lambda: None)  # the role check is under test, not the broker
    for role, expected in (("anonymous", 401), ("norole", 403), ("annotator", 403), ("coordinator", 403),
                           ("pi", 202), ("admin", 202)):
        assert api_for(role).post("/api/ops/ping-worker/").status_code == expected, role


def _terminate_connections(application_name: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = %s",
                       [application_name])
        return cursor.fetchone()[0]


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_an_idle_worker_is_reported_alive_from_its_own_heartbeat(celery_worker_process, api_for, settings, tmp_path):
    """No ping: the worker's heartbeat alone makes it alive, per queue; a lost database connection does not
    stop it, and a stopped worker is reported dead once its beats are stale."""
    if connection.vendor != "postgresql":
        pytest.skip("drops the worker's PostgreSQL connections")
    settings.CTS_WORKER_HEARTBEAT_S = 1
    settings.CELERY_TASK_DEFAULT_QUEUE = f"hb-default-{os.getpid()}"  # nothing else is sent to these
    settings.CTS_TRAINING_QUEUE = f"hb-training-{os.getpid()}"
    name, app_name = f"hb-{os.getpid()}@%h", f"cts-hb-test-{os.getpid()}"
    env = {**celery_worker_process.env, "CTS_WORKER_HEARTBEAT_S": "1",
           "DATABASE_URL": celery_worker_process.env["DATABASE_URL"] + f"?application_name={app_name}"}

    def health():
        return api_for("pi").get("/api/health/").json()

    with open(tmp_path / "worker.log", "w+") as log:
        worker = start_worker(name, settings.CELERY_TASK_DEFAULT_QUEUE, env, log)
        worker.log = log
        try:
            report = wait_for(lambda: (h := health())["queues"]["default"]["alive"] and h, timeout=60, worker=worker)
            hostname = report["queues"]["default"]["workers"][0]
            assert hostname.startswith(f"hb-{os.getpid()}@")
            assert report["queues"]["training"] == {"queue": settings.CTS_TRAINING_QUEUE, "alive": False,
                                                    "workers": []}
            row = WorkerHeartbeat.objects.get(hostname=hostname)
            assert row.queues == settings.CELERY_TASK_DEFAULT_QUEUE
            # Idle, it keeps beating: a newer beat within about one interval.
            wait_for(lambda: WorkerHeartbeat.objects.get(hostname=hostname).seen_at > row.seen_at, timeout=5,
                     worker=worker)

            dropped_at = timezone.now()
            assert _terminate_connections(app_name) >= 1
            wait_for(lambda: "Worker heartbeat not recorded" in log_text(log), timeout=10, worker=worker)
            wait_for(lambda: WorkerHeartbeat.objects.get(hostname=hostname).seen_at > dropped_at, timeout=10,
                     worker=worker)
            assert worker.poll() is None
        finally:
            os.killpg(worker.pid, signal.SIGTERM)
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait()
        stopped_at = timezone.now()
        wait_for(lambda: not health()["queues"]["default"]["alive"], timeout=10, worker=worker)
        # The beats ended with the worker: none was recorded after it stopped.
        assert WorkerHeartbeat.objects.get(hostname=hostname).seen_at < stopped_at


def log_text(log) -> str:
    log.flush()
    log.seek(0)
    return log.read()
