"""scripts/_venv.sh reinstalls the project only when what it was installed from changed.

Runs ensure_venv in a scratch folder whose .venv/bin/python is a stub that logs its arguments, so no real
pip runs: the log shows whether an install happened.
"""

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
INSTALL = "-m pip install --quiet -e ."

STUB = """#!/usr/bin/env bash
echo "$*" >> "$STUB_LOG"
case "$*" in
  *sys.version*) echo "${STUB_PY_VERSION:-3.11.7 (main) [GCC 12]}" ;;
  *"import django, torch, celery"*) [ ! -e .venv/broken ] && exit "${STUB_IMPORT_RC:-0}" ;;
  "-m pip install --quiet -e"*) rm -f .venv/broken; echo "pip output"; exit "${STUB_PIP_RC:-0}" ;;
esac
"""


@pytest.fixture
def project(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n')
    python = tmp_path / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(STUB)
    python.chmod(0o755)
    return tmp_path


def ensure_venv(project: Path, extras: str = "", **env) -> list[str]:
    """Run ensure_venv; return the pip installs of the project it made."""
    log = project / "calls.log"
    log.write_text("")
    result = subprocess.run(["bash", "-c", f'source "{ROOT}/scripts/_venv.sh"; ensure_venv "$1"', "_", extras],
                            cwd=project, env={**os.environ, "STUB_LOG": str(log), **env},
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return [line for line in log.read_text().splitlines() if line.startswith(INSTALL)]


def test_installs_once_then_skips_until_pyproject_changes(project):
    assert ensure_venv(project) == [INSTALL]
    assert ensure_venv(project) == []
    assert ensure_venv(project) == []
    (project / "pyproject.toml").write_text('[project]\nname = "x"\ndependencies = ["six"]\n')
    assert ensure_venv(project) == [INSTALL]
    assert ensure_venv(project) == []


def test_new_extras_reinstall_and_extras_already_installed_do_not(project):
    assert ensure_venv(project, "[test]") == [INSTALL + "[test]"]
    assert ensure_venv(project, "[test]") == []
    assert ensure_venv(project, "") == []  # run.sh after test.sh: everything it needs is there
    assert ensure_venv(project, "[s3]") == [INSTALL + "[s3]"]
    assert ensure_venv(project, "[test]") == []
    assert ensure_venv(project, "[s3,test]") == []
    (project / "pyproject.toml").write_text('[project]\nname = "y"\n')
    assert ensure_venv(project, "[s3]") == [INSTALL + "[s3]"]
    assert ensure_venv(project, "[test]") == [INSTALL + "[test]"]  # a new pyproject: earlier extras don't count


def test_another_python_or_a_broken_import_reinstalls(project):
    assert ensure_venv(project) == [INSTALL]
    assert ensure_venv(project, STUB_PY_VERSION="3.11.9 (main)") == [INSTALL]
    assert ensure_venv(project, STUB_PY_VERSION="3.11.9 (main)") == []
    (project / ".venv" / "broken").touch()  # e.g. a package removed by hand: the import check fails
    assert ensure_venv(project, STUB_PY_VERSION="3.11.9 (main)") == [INSTALL]
    assert ensure_venv(project, STUB_PY_VERSION="3.11.9 (main)") == []


def test_failed_pip_leaves_no_stamp_so_the_next_start_tries_again(project):
    assert ensure_venv(project, STUB_PIP_RC="1") == [INSTALL]
    assert ensure_venv(project) == [INSTALL]
    assert ensure_venv(project) == []


def test_an_install_that_does_not_import_stops_the_script(project):
    log = project / "calls.log"
    log.write_text("")
    result = subprocess.run(["bash", "-c", f'source "{ROOT}/scripts/_venv.sh"; ensure_venv ""; echo started'],
                            cwd=project, env={**os.environ, "STUB_LOG": str(log), "STUB_IMPORT_RC": "1"},
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "started" not in result.stdout
    assert not (project / ".venv" / "cts-install.stamp").exists()
