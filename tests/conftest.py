import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from tests.factories import UserFactory

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _media_root(tmp_path, settings):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def users(db):
    """One user per role, plus an admin and a user with no role."""
    return {
        "coordinator": UserFactory(username="coord", role="coordinator"),
        "annotator": UserFactory(username="annot", role="annotator"),
        "pi": UserFactory(username="pi", role="pi"),
        "admin": UserFactory(username="root", is_superuser=True, is_staff=True),
        "norole": UserFactory(username="nobody"),
    }


@pytest.fixture
def client_for(users, client):
    def login(role):
        client.force_login(users[role])
        return client
    return login


@pytest.fixture
def api_for(users):
    from rest_framework.test import APIClient

    def login(role):
        api = APIClient()
        if role != "anonymous":
            api.force_authenticate(users[role])
        return api
    return login


def _database_url() -> str:
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def start_worker(name: str, queues: str, env: dict, log) -> subprocess.Popen:
    """A `celery worker` process (one child) in its own process group, so a test can kill it whole."""
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "mlworker.celery", "worker", "--loglevel=INFO", "--concurrency=1",
         "--pool=prefork", "-Q", queues, "--without-gossip", "--without-mingle", "-n", name],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def assert_web_access(response, role: str, allowed: set[str]) -> None:
    """A page answers an allowed role, sends anonymous users to log in, and refuses other roles."""
    if role in allowed:
        assert response.status_code in (200, 302), response.content[:800]
        if response.status_code == 302:
            assert "/accounts/login/" not in response["Location"]
    elif role == "anonymous":
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    else:
        assert response.status_code == 403


@pytest.fixture(scope="session")
def celery_worker_process(django_db_setup, django_db_blocker, tmp_path_factory):
    """A real `celery worker` process on the configured broker (Redis in CI), using the test database.

    Tests that use it must commit their data: mark them `django_db(transaction=True)`.
    """
    from mlworker.celery import app

    with django_db_blocker.unblock():
        url = _database_url()
    media = tmp_path_factory.mktemp("worker-media")
    env = {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "studyapp.settings.test",
           "MEDIA_ROOT": str(media), "PYTHONUNBUFFERED": "1",
           "CTS_CHECKPOINT_DIR": str(tmp_path_factory.mktemp("worker-checkpoints"))}
    app.control.purge()  # leftovers of an earlier, interrupted run must not run against this database
    log = open(tmp_path_factory.mktemp("worker-log") / "worker.log", "w+")
    proc = start_worker(f"test-worker-{os.getpid()}@%h", ",".join(settings.CTS_WORKER_QUEUES), env, log)
    proc.media_root = media
    proc.env = env
    proc.log = log
    yield proc
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
    log.close()


def wait_for(predicate, *, timeout=60.0, interval=0.2, worker=None):
    """Poll until predicate() is truthy; on timeout fail with the worker's log for diagnosis."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    detail = ""
    if worker is not None:
        worker.log.flush()
        worker.log.seek(0)
        detail = "\n--- worker log ---\n" + worker.log.read()[-4000:]
    pytest.fail(f"condition not met within {timeout} s{detail}")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PrivateRedis:
    """A redis-server of the test's own, which the test may stop and start again on the same port."""

    def __init__(self, folder: Path):
        self.port, self.folder, self.proc = _free_port(), folder, None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "no", "--dir", str(self.folder)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: subprocess.run(["redis-cli", "-p", str(self.port), "ping"], capture_output=True,
                                        text=True).stdout.strip() == "PONG", timeout=20, interval=0.1)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=20)


@pytest.fixture
def broker(tmp_path, settings):
    """A private Redis, and this test process's Celery app publishing to it for the test."""
    from mlworker.celery import app

    redis = PrivateRedis(tmp_path)
    redis.start()
    names = ("broker_url", "broker_write_url", "broker_read_url", "result_backend")
    saved = {name: app.conf[name] for name in names}
    _point(app, dict.fromkeys(names, redis.url))
    yield redis
    _point(app, saved)
    if redis.proc.poll() is None:
        redis.stop()


def _point(app, conf: dict) -> None:
    app.conf.update(conf)
    app._pool = None  # the producer pools were built for the previous broker
    app.amqp._producer_pool = None
    app._local.__dict__.pop("backend", None)
