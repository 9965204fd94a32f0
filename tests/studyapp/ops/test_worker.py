import pytest

from studyapp.ops.models import WorkerHeartbeat
from studyapp.ops.tasks import heartbeat
from tests.conftest import wait_for


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_runs_a_task_and_the_health_endpoint_sees_it(celery_worker_process, api_for, users):
    assert api_for("anonymous").get("/api/health/").json()["worker"]["alive"] is False
    response = api_for("pi").post("/api/ops/ping-worker/")
    assert response.status_code == 202
    row = wait_for(lambda: WorkerHeartbeat.objects.first(), timeout=90, worker=celery_worker_process)
    assert row.hostname.startswith("test-worker-")
    health = api_for("anonymous").get("/api/health/").json()
    assert health["database"] == "ok" and health["worker"]["alive"] is True


@pytest.mark.django_db
def test_heartbeat_is_idempotent_per_host():
    heartbeat.apply()
    heartbeat.apply()
    assert WorkerHeartbeat.objects.count() == 1
