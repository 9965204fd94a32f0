"""The Celery application. Task modules live beside the Django apps whose rows they update."""

import os

from celery import Celery
from celery.signals import worker_ready

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "studyapp.settings.base")

app = Celery("cts_study")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_ready.connect
def _announce_worker(sender, **kwargs):
    """Queue a heartbeat as soon as a worker starts, so the app can tell that background work runs."""
    sender.app.send_task("ops.heartbeat")
