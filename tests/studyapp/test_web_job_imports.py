"""The web side of propagation and prediction (queueing, polling, the pages) loads no torch, timm or OpenCV:
only the worker imports studyapp.annotations.propagation and studyapp.experiments.prediction."""

import subprocess
import sys

from django.conf import settings

HEAVY = ("torch", "timm", "torchvision", "cv2")
WEB_SIDE = ("studyapp.annotations.api", "studyapp.annotations.services", "studyapp.annotations.tasks",
            "studyapp.experiments.api", "studyapp.experiments.prediction_jobs", "studyapp.experiments.prediction_views",
            "studyapp.experiments.tasks", "studyapp.ops.api")


def _loaded_after(modules: tuple[str, ...]) -> list[str]:
    code = (
        "import importlib, os, sys, django\n"
        "os.environ['DJANGO_SETTINGS_MODULE'] = 'studyapp.settings.test'\n"
        "django.setup()\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=settings.BASE_DIR, capture_output=True, text=True,
                            timeout=120, check=True)
    return [m for m in result.stdout.strip().split(",") if m]


def test_queueing_and_polling_jobs_imports_no_ml_stack():
    assert _loaded_after(WEB_SIDE) == []


def test_the_worker_modules_are_the_ones_that_load_it():
    # The check above can fail: the worker's own modules do pull the stack in.
    assert _loaded_after(("studyapp.annotations.propagation",)) == ["cv2"]
    assert "torch" in _loaded_after(("studyapp.experiments.prediction",))
