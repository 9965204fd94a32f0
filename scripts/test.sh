#!/usr/bin/env bash
# Install what the tests need and run the whole suite (arguments go to pytest).
# The suite uses DATABASE_URL / CELERY_BROKER_URL when set (CI sets PostgreSQL and Redis),
# else SQLite and the filesystem broker under var/.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh
ensure_venv "[test]"
# The browser tests (tests/browser) drive Debian's Chromium through Playwright.
if [ ! -x /usr/bin/chromium ]; then
  as_root=()
  if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then as_root=(sudo); fi
  "${as_root[@]}" apt-get update -qq
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium
fi
.venv/bin/python -m pytest "$@"
