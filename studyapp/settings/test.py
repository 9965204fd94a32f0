"""Settings for the test suite: the same environment-driven settings, with test conveniences."""

import os

os.environ.setdefault("SECRET_KEY", "test-suite-only-key")

from .base import *  # noqa: E402,F401,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast logins in tests
STORAGES["staticfiles"] = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}  # noqa: F405
WHITENOISE_AUTOREFRESH = True  # serve from the source folders; tests never run collectstatic
# Training tests finish many runs; only the explanation tests (which turn it on) explain them.
CTS_EXPLAIN_AFTER_TRAINING = False
# The test server and Chromium speak plain http; tests/studyapp/test_deploy.py checks the production defaults.
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = SECURE_SSL_REDIRECT = False
SECURE_HSTS_SECONDS = 0
