"""CTS-Study: the Django project (settings, URLs) and one app per concern."""

# Load the Celery app with Django so tasks queued from web requests use its configuration.
from mlworker.celery import app as celery_app

__all__ = ["celery_app"]
