"""The app's default database is SQLite (a new user sets nothing): the data paths that use hand-written SQL,
locks or constraints PostgreSQL and SQLite treat differently run on SQLite too, in a process of their own."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Raw SQL (the split fingerprint), advisory locks (sites), expression constraints (one active prospective model).
ON_SQLITE = ["tests/studyapp/experiments/test_split_fingerprint.py", "tests/studyapp/experiments/test_external_splits.py",
             "tests/studyapp/sites/test_sites.py", "tests/studyapp/prospective/test_prospective.py"]


@pytest.mark.timeout(900)
def test_the_sqlite_data_paths_pass(tmp_path):
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}", "CTS_VAR_DIR": str(tmp_path / "var")}
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x", *ON_SQLITE],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=880)
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-2000:]
    assert " passed" in result.stdout.splitlines()[-1]
