#!/usr/bin/env bash
# Install CTS-Study and run it: the web app at http://127.0.0.1:8000 and a real Celery worker.
# With no environment set it uses SQLite and a filesystem broker under var/; set DATABASE_URL and
# CELERY_BROKER_URL to use PostgreSQL and Redis instead. Options:
#   --demo   seed the demo study (phantom clips, 100 hands) in the background once the worker runs
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh
ensure_venv ""

VAR="${CTS_VAR_DIR:-var}"
mkdir -p "$VAR"
if [ -z "${SECRET_KEY:-}" ]; then
  [ -s "$VAR/secret_key" ] || .venv/bin/python -c "import secrets; print(secrets.token_urlsafe(50))" > "$VAR/secret_key"
  export SECRET_KEY="$(cat "$VAR/secret_key")"
fi
export DJANGO_SETTINGS_MODULE=studyapp.settings.base
PORT="${PORT:-8000}"

.venv/bin/python manage.py migrate --noinput
.venv/bin/python manage.py collectstatic --noinput -v0
.venv/bin/python manage.py create_study_users --credentials-file "$VAR/credentials.txt" >/dev/null

.venv/bin/celery -A mlworker.celery worker --loglevel=INFO -Q "${CTS_WORKER_QUEUES:-default,training}" \
  --concurrency="${CTS_WORKER_CONCURRENCY:-2}" --logfile="$VAR/worker.log" &
WORKER=$!
trap 'kill $WORKER 2>/dev/null; wait $WORKER 2>/dev/null' EXIT INT TERM

if [ "${1:-}" = "--demo" ]; then
  .venv/bin/python manage.py seed_demo --background
fi

cat <<MSG

  CTS-Study is starting at http://127.0.0.1:${PORT}/
  Log in with one of these users (one per role):
$(sed 's/^/  /' "$VAR/credentials.txt")
  Worker log: $VAR/worker.log. Stop with Ctrl-C.
MSG
[ "${1:-}" = "--demo" ] || echo "  For a populated demo study, start with: ./scripts/run.sh --demo"
.venv/bin/gunicorn studyapp.wsgi:application --bind "127.0.0.1:${PORT}" --workers 2 --threads 4 \
  --access-logfile - --timeout 120
