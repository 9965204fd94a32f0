"""The web process loads no ML stack: importing the URL configuration pulls in neither torch, timm nor OpenCV."""

import subprocess
import sys

from django.conf import settings

HEAVY = ("torch", "timm", "torchvision", "lime", "skimage", "cv2")


def test_url_configuration_imports_no_ml_stack():
    # A fresh interpreter: this test process has long imported torch for other tests.
    code = (
        "import os, sys, django\n"
        "os.environ['DJANGO_SETTINGS_MODULE'] = 'studyapp.settings.test'\n"
        "django.setup()\n"
        "from django.urls import get_resolver\n"
        "get_resolver().url_patterns\n"
        "import studyapp.api_urls\n"
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=settings.BASE_DIR, capture_output=True, text=True,
                            timeout=120, check=True)
    assert result.stdout.strip() == "", f"the web process imported {result.stdout.strip()}"
