import re

import pytest

from studyapp.ops.models import WorkerHeartbeat
from studyapp.ops.tasks import heartbeat
from tests.conftest import wait_for


def _pings_answered(worker) -> int:
    worker.log.flush()
    worker.log.seek(0)
    return len(re.findall(r"Task ops\.heartbeat\[[^\]]+\] succeeded", worker.log.read()))


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_manual_ping_is_answered_by_a_real_worker(celery_worker_process, api_for, users, settings):
    answered_before = _pings_answered(celery_worker_process)
    response = api_for("pi").post("/api/ops/ping-worker/")
    assert response.status_code == 202
    wait_for(lambda: _pings_answered(celery_worker_process) > answered_before, timeout=90,
             worker=celery_worker_process)
    row = wait_for(lambda: WorkerHeartbeat.objects.filter(hostname__startswith="test-worker-").first(),
                   timeout=30, worker=celery_worker_process)
    assert set(row.queues.split(",")) == set(settings.CTS_WORKER_QUEUES)  # the queues the worker consumes
    health = api_for("pi").get("/api/health/").json()
    assert health["database"] == "ok" and health["worker"]["alive"] is True


@pytest.mark.django_db
def test_heartbeat_is_idempotent_per_host():
    heartbeat.apply()
    heartbeat.apply()
    assert WorkerHeartbeat.objects.count() == 1
