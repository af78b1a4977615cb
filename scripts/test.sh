#!/usr/bin/env bash
# Installs everything (including the test tools), starts PostgreSQL and Redis if they are down,
# checks the style and the types (ruff, mypy, ESLint) and runs the whole test suite: unit,
# integration (PostgreSQL, Redis), end to end (a real vLLM server) and browser (headless
# Chromium). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install.sh --test-tools
scripts/services.sh

echo "==> ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .

echo "==> mypy"
.venv/bin/mypy

echo "==> eslint"
npm run --prefix frontend --silent lint

echo "==> docker compose files (against the Compose specification: Docker cannot run here)"
.venv/bin/check-jsonschema --builtin-schema vendor.compose-spec docker/compose.yaml \
  docker/compose.gpu-training.yaml

echo "==> pytest"
exec .venv/bin/python -m pytest "$@"
