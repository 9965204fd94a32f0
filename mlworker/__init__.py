"""Background work of CTS-Study: the Celery app (`mlworker.celery`) and pure media/ML/statistics code.

Only the Celery app touches Django; the subpackages (media, phantom, ml, stats) import without it.
"""
