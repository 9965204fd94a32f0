"""Deployment: production settings pass `check --deploy`, pages carry a content security policy that their
own templates satisfy, media is never served outside the role-checking views, and the compose file shares
media and checkpoints between web and workers."""

import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from django.conf import settings

ROOT = Path(settings.BASE_DIR)


def _manage(*args, **env):
    base = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "DATABASE_URL": "sqlite:////tmp/cts-deploy-check.sqlite3",
            "CTS_VAR_DIR": "/tmp/cts-deploy-check", "DJANGO_SETTINGS_MODULE": "studyapp.settings.base"}
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env={**base, **env}, capture_output=True,
                          text=True, timeout=180)


def test_production_settings_pass_check_deploy_with_no_warning():
    result = _manage("check", "--deploy", "--fail-level", "WARNING",
                     SECRET_KEY=secrets.token_urlsafe(50), ALLOWED_HOSTS="cts.example.org")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_debug_mode_serves_no_media_url():
    code = ("import django; django.setup()\n"
            "from django.urls import resolve, Resolver404\n"
            "try:\n    resolve('/media/clips/1/frame_0001.png'); print('served')\n"
            "except Resolver404:\n    print('not served')\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                            env={"PATH": "/usr/bin:/bin", "DEBUG": "1", "DJANGO_SETTINGS_MODULE": "studyapp.settings.base",
                                 "CTS_VAR_DIR": "/tmp/cts-deploy-check"})
    assert result.stdout.strip() == "not served", result.stderr


@pytest.mark.django_db
def test_pages_carry_the_content_security_policy(client_for):
    response = client_for("pi").get("/cohort/")
    policy = response["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert "unsafe-inline" not in policy.split("script-src")[1].split(";")[0]


def test_templates_hold_no_inline_script_the_policy_would_block():
    # The study report is a downloaded, self-contained file (opened from disk, not under the site's policy).
    offenders = []
    for template in (ROOT / "templates").rglob("*.html"):
        if template.name == "report.html":
            continue
        text = template.read_text()
        for tag in re.findall(r"<script\b[^>]*>", text):
            if "src=" not in tag and "application/json" not in tag:
                offenders.append(f"{template.relative_to(ROOT)}: {tag}")
        offenders += [f"{template.relative_to(ROOT)}: {m}" for m in re.findall(r"\son[a-z]+=\"", text)]
    assert offenders == []


@pytest.mark.django_db
def test_frames_need_a_login(client):
    response = client.get("/clips/frames/1/image.png")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_compose_shares_media_and_checkpoints_and_offers_a_gpu_worker():
    compose = yaml.safe_load((ROOT / "docker" / "compose.yaml").read_text())
    services = compose["services"]
    for name in ("web", "worker-default", "worker-training", "worker-gpu"):
        volumes = {v.split(":")[0] for v in services[name]["volumes"]}
        assert {"media", "checkpoints"} <= volumes, name
        assert services[name]["environment"]["SECURE_COOKIES"] == "${SECURE_COOKIES:-1}"
    assert services["worker-gpu"]["profiles"] == ["gpu"]
    assert "CTS_CODE_VERSION" in services["web"]["build"]["args"]
    assert "ARG CTS_CODE_VERSION" in (ROOT / "docker" / "Dockerfile").read_text()
