"""Queueing a background job: one job per key while active, a broker that is down fails it instead of leaving it."""

import pytest

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
    assert services.background_job_claim(first.pk).status == "running"
    assert services.background_job_claim(first.pk) is None  # a second delivery
    services.background_job_finish(first.pk, result={"n": 1})
    with django_capture_on_commit_callbacks(execute=True):
        after = services.background_job_queue(kind="k", key="a", params={}, created_by=None, task=broker)
    assert after.pk != first.pk and BackgroundJob.objects.get(pk=first.pk).result == {"n": 1}


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
