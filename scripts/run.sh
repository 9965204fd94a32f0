#!/usr/bin/env bash
# Install CTS-Study and run it: the web app at http://127.0.0.1:8000 and two real Celery workers, one for
# the default queue (frame extraction, demo seeding, pings) and one for the training queue.
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
# This local app speaks plain http on 127.0.0.1: no https redirect, HSTS or https-only cookies here
# (a deployment keeps the secure defaults; see the README's configuration table).
export SECURE_SSL_REDIRECT="${SECURE_SSL_REDIRECT:-0}" SECURE_COOKIES="${SECURE_COOKIES:-0}"
export SECURE_HSTS_SECONDS="${SECURE_HSTS_SECONDS:-0}"
PORT="${PORT:-8000}"

.venv/bin/python manage.py migrate --noinput
.venv/bin/python manage.py collectstatic --noinput -v0
.venv/bin/python manage.py create_study_users --credentials-file "$VAR/credentials.txt" >/dev/null

# One worker per queue, so a training run never holds up frame extraction or anything else on "default".
# Stable node names: a worker restarted under its name queues again the training runs it held.
start_worker() {  # $1: node name and log name, $2: queue, $3: concurrency (prefork child processes)
  .venv/bin/celery -A mlworker.celery worker --loglevel=INFO -n "$1@%h" -Q "$2" --concurrency="$3" \
    --logfile="$VAR/worker-$1.log" &
}
start_worker default default "${CTS_DEFAULT_WORKER_CONCURRENCY:-2}"
DEFAULT_WORKER=$!
start_worker training "${CTS_TRAINING_QUEUE:-training}" "${CTS_TRAINING_WORKER_CONCURRENCY:-1}"
TRAINING_WORKER=$!
trap 'kill $DEFAULT_WORKER $TRAINING_WORKER 2>/dev/null; wait $DEFAULT_WORKER $TRAINING_WORKER 2>/dev/null' EXIT INT TERM

if [ "${1:-}" = "--demo" ]; then
  .venv/bin/python manage.py seed_demo --background
fi

cat <<MSG

  CTS-Study is starting at http://127.0.0.1:${PORT}/
  Log in with one of these users (one per role):
$(sed 's/^/  /' "$VAR/credentials.txt")
  Worker logs: $VAR/worker-default.log, $VAR/worker-training.log. Stop with Ctrl-C.
MSG
[ "${1:-}" = "--demo" ] || echo "  For a populated demo study, start with: ./scripts/run.sh --demo"
.venv/bin/gunicorn studyapp.wsgi:application --bind "127.0.0.1:${PORT}" --workers 2 --threads 4 \
  --access-logfile - --timeout 120
