"""Queueing a background job: one job per key while active, a broker that is down fails it instead of leaving it."""

from datetime import timedelta

import pytest
from django.utils import timezone

from studyapp.ops import services
from studyapp.ops.models import BackgroundJob

pytestmark = pytest.mark.django_db


class Broker:
    def __init__(self, up=True):
        self.up, self.sent = up, []

    def delay(self, job_id):
        if not self.up:
            raise ConnectionError("Error 111 connecting to redis:6379. Connection refused.")
        self.sent.append(job_id)


def test_one_active_job_per_key_and_a_new_one_once_it_ended(django_capture_on_commit_callbacks):
    broker = Broker()
    with django_capture_on_commit_callbacks(execute=True):
        first = services.background_job_queue(kind="k", key="a", params={}, created_by=None, task=broker)
        again = services.background_job_queue(kind="k", key="a", params={}, created_by=None, task=broker)
        other = services.background_job_queue(kind="k", key="b", params={}, created_by=None, task=broker)
    assert first.pk == again.pk != other.pk and broker.sent == [first.pk, other.pk]
    kind = services.background_job_kind("k", "ops.heartbeat")
    job, lease = services.background_job_claim(kind, first.pk)
    assert job.status == "running" and job.lease_expires_at is not None
    assert services.background_job_claim(kind, first.pk) is None  # a second delivery while the lease holds
    services.background_job_finish(lease, result={"n": 1})
    with django_capture_on_commit_callbacks(execute=True):
        after = services.background_job_queue(kind="k", key="a", params={}, created_by=None, task=broker)
    assert after.pk != first.pk and BackgroundJob.objects.get(pk=first.pk).result == {"n": 1}


def test_a_job_whose_worker_died_is_taken_over_and_the_dead_holder_writes_nothing():
    kind = services.background_job_kind("k", "ops.heartbeat")
    queued = BackgroundJob.objects.create(kind="k", key="a", params={})
    _, dead = services.background_job_claim(kind, queued.pk)
    BackgroundJob.objects.filter(pk=queued.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    job, live = services.background_job_claim(kind, queued.pk)  # the lease expired: the next delivery takes it
    services.background_job_finish(dead, result={"from": "dead"})  # fenced by the token: nothing lands
    assert BackgroundJob.objects.get(pk=job.pk).status == "running"
    services.background_job_finish(live, result={"from": "live"})
    assert BackgroundJob.objects.get(pk=job.pk).result == {"from": "live"}


def test_a_broker_that_is_down_fails_the_job_with_a_way_forward(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        job = services.background_job_queue(kind="k", key="a", params={}, created_by=None, task=Broker(up=False))
    job.refresh_from_db()
    assert job.status == "failed" and "Try again" in job.error and job.finished_at
    broker = Broker()
    with django_capture_on_commit_callbacks(execute=True):
        retry = services.background_job_queue(kind="k", key="a", params={}, created_by=None, task=broker)
    assert retry.pk != job.pk and broker.sent == [retry.pk]


def test_the_database_refuses_a_second_active_job_for_a_key():
    from django.db import IntegrityError

    BackgroundJob.objects.create(kind="k", key="a")
    with pytest.raises(IntegrityError):
        BackgroundJob.objects.create(kind="k", key="a", status="running")
