"""The Celery application. Task modules live beside the Django apps whose rows they update."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "studyapp.settings.base")

app = Celery("cts_study")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# Each worker records itself alive, busy or idle (named, not imported: studyapp imports this module).
app.steps["worker"].add("studyapp.ops.heartbeat:HeartbeatStep")


# Torch threads per pool process from the cores and the concurrency (mlworker.threads); recorded on each run.
from celery import signals  # noqa: E402

from mlworker import threads  # noqa: E402

signals.celeryd_init.connect(threads.on_worker_init, weak=False)
signals.worker_process_init.connect(threads.on_worker_process_init, weak=False)
