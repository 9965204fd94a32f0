#!/usr/bin/env bash
# Install what the tests need and run the whole suite (arguments go to pytest).
# The suite uses DATABASE_URL / CELERY_BROKER_URL when set (CI sets PostgreSQL and Redis),
# else SQLite and the filesystem broker under var/.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh
ensure_venv "[test]"
.venv/bin/python -m pytest "$@"
