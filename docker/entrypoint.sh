#!/usr/bin/env bash
# Entrypoint of the web/worker image (docker/Dockerfile).
#
#   web              wait for the database, apply migrations, serve the ASGI app with uvicorn
#   worker [ARGS]    wait for the database, run a Celery worker (queues: $CELERY_QUEUES)
#   celery ARGS      wait for the database, run `celery ARGS` (e.g. celery -A tutor worker -Q default)
#   manage ARGS      wait for the database, run `python manage.py ARGS`
#   anything else    run as is (e.g. bash)
#
# Environment:
#   DATABASE_URL           postgres://user:pass@host:5432/db (required in production)
#   DB_WAIT_TIMEOUT        seconds to wait for the database (default 60)
#   RUN_MIGRATIONS         1 (default) to migrate before the web server starts; 0 to skip
#   WEB_CONCURRENCY        uvicorn worker processes (default 2)
#   WEB_PORT               port inside the container (default 8000)
#   FORWARDED_ALLOW_IPS    proxies whose X-Forwarded-* headers are trusted (default 127.0.0.1)
#   CELERY_QUEUES          queues of `worker` (default "default"; a GPU box: "training")
#   CELERY_CONCURRENCY     worker processes of `worker` (default: Celery's, one per CPU)
#   LOG_LEVEL              INFO
set -euo pipefail

cd /app
export DJANGO_SETTINGS_MODULE=${DJANGO_SETTINGS_MODULE:-tutor.settings}

log() { echo "[entrypoint] $*" >&2; }

wait_for_database() {
  local timeout=${DB_WAIT_TIMEOUT:-60}
  log "waiting for the database (up to ${timeout}s)"
  # Django's own connection code, so every backend DATABASE_URL can name is handled alike.
  python - "$timeout" <<'PY'
import sys
import time

import django

django.setup()
from django.db import connection  # noqa: E402
from django.db.utils import OperationalError  # noqa: E402

deadline = time.monotonic() + float(sys.argv[1])
while True:
    try:
        connection.ensure_connection()
        connection.close()
        break
    except OperationalError as exc:
        if time.monotonic() > deadline:
            sys.exit(f"[entrypoint] the database is still unreachable: {exc}")
        time.sleep(1)
PY
}

migrate() {
  if [ "${RUN_MIGRATIONS:-1}" = "0" ]; then
    log "RUN_MIGRATIONS=0: not migrating"
    return
  fi
  log "applying migrations"
  # On PostgreSQL an advisory lock keeps several web replicas that start together from
  # migrating at the same time; the others wait, then find nothing to do.
  python - <<'PY'
import django

django.setup()
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402

LOCK_ID = 7_215_004_211  # any constant shared by every replica
if connection.vendor == "postgresql":
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s)", [LOCK_ID])
    try:
        call_command("migrate", interactive=False)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [LOCK_ID])
else:
    call_command("migrate", interactive=False)
PY
}

command=${1:-web}
[ $# -gt 0 ] && shift

case "$command" in
  web)
    wait_for_database
    migrate
    log "starting uvicorn with ${WEB_CONCURRENCY:-2} worker(s)"
    exec uvicorn tutor.asgi:application \
      --host 0.0.0.0 \
      --port "${WEB_PORT:-8000}" \
      --workers "${WEB_CONCURRENCY:-2}" \
      --ws websockets-sansio \
      --lifespan off \
      --proxy-headers \
      --forwarded-allow-ips "${FORWARDED_ALLOW_IPS:-127.0.0.1}" \
      --timeout-graceful-shutdown 20 \
      --log-level "$(echo "${LOG_LEVEL:-INFO}" | tr '[:upper:]' '[:lower:]')" \
      "$@"
    ;;
  worker)
    wait_for_database
    args=(-A tutor worker -Q "${CELERY_QUEUES:-default}" --loglevel "${LOG_LEVEL:-INFO}")
    [ -n "${CELERY_CONCURRENCY:-}" ] && args+=(--concurrency "$CELERY_CONCURRENCY")
    exec celery "${args[@]}" "$@"
    ;;
  celery)
    wait_for_database
    exec celery "$@"
    ;;
  manage)
    wait_for_database
    exec python manage.py "$@"
    ;;
  *)
    exec "$command" "$@"
    ;;
esac
