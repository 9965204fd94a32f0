"""The Celery application. Task modules live beside the Django apps whose rows they update."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "studyapp.settings.base")

app = Celery("cts_study")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# Each worker records itself alive, busy or idle (named, not imported: studyapp imports this module).
app.steps["worker"].add("studyapp.ops.heartbeat:HeartbeatStep")

