import os
import signal
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
