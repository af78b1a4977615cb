#!/usr/bin/env bash
# Starts `vllm serve` for the tutor (docker/Dockerfile.vllm): TUTOR_MODEL served under
# TUTOR_MODEL_NAME, LoRA enabled and loadable at run time, the adapters under /adapters
# registered at start-up. Extra arguments go to `vllm serve`.
set -euo pipefail

if [ -z "${TUTOR_MODEL:-}" ]; then
  echo "[vllm] set TUTOR_MODEL to a Hugging Face model id or a folder in the container" >&2
  exit 2
fi
served_name=${TUTOR_MODEL_NAME:-$TUTOR_MODEL}
# POST /v1/load_lora_adapter exists only with this (and --enable-lora): promoted versions are
# loaded at run time (inference/adapters.py).
export VLLM_ALLOW_RUNTIME_LORA_UPDATING=${VLLM_ALLOW_RUNTIME_LORA_UPDATING:-True}
adapter_dir=${TUTOR_ADAPTER_DIR:-/adapters}

args=(
  "$TUTOR_MODEL"
  --host 0.0.0.0
  --port "${VLLM_PORT:-8000}"
  --served-model-name "$served_name"
  --gpu-memory-utilization "${VLLM_GPU_MEMORY_UTILIZATION:-0.90}"
  --tensor-parallel-size "${VLLM_TENSOR_PARALLEL_SIZE:-1}"
  --enable-lora
  --max-lora-rank "${VLLM_MAX_LORA_RANK:-64}"
  --max-loras "${VLLM_MAX_LORAS:-4}"
)
if [ -n "${VLLM_MAX_MODEL_LEN:-}" ]; then
  args+=(--max-model-len "$VLLM_MAX_MODEL_LEN")
fi

# Adapters trained and promoted earlier: runtime loads do not survive a restart, so every
# adapter folder (one holding adapter_config.json) is registered again under its folder name.
if [ "${VLLM_PRELOAD_ADAPTERS:-1}" = "1" ] && [ -d "$adapter_dir" ]; then
  modules=()
  for config in "$adapter_dir"/*/adapter_config.json; do
    [ -e "$config" ] || continue
    folder=$(dirname "$config")
    modules+=("$(basename "$folder")=$folder")
  done
  if [ ${#modules[@]} -gt 0 ]; then
    echo "[vllm] serving adapters: ${modules[*]}" >&2
    args+=(--lora-modules "${modules[@]}")
  fi
fi

if [ -n "${VLLM_EXTRA_ARGS:-}" ]; then
  # shellcheck disable=SC2206  # split on spaces on purpose
  extra=(${VLLM_EXTRA_ARGS})
  args+=("${extra[@]}")
fi

echo "[vllm] vllm serve ${args[*]} $*" >&2
exec vllm serve "${args[@]}" "$@"
