"""The command line, ``python -m inference.launcher`` (:func:`main`): serve a model in the
foreground until SIGINT/SIGTERM, or print the command and environment (``--print-command``)."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from inference.models import DEFAULT_SERVED_MODEL_NAME

from .command import (
    DEFAULT_HOST,
    DEFAULT_MAX_LORA_RANK,
    DEFAULT_MAX_LORAS,
    DEFAULT_MAX_MODEL_LEN,
    DEFAULT_PORT,
    build_command,
    default_api_key,
    is_vllm_cpu,
    masked_env,
    server_env,
)
from .server import ServerStartError, VLLMServer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m inference.launcher",
        description="Serve a chat model with vLLM's OpenAI-compatible API (project defaults).",
        epilog="Unknown options are passed to vLLM unchanged.",
    )
    parser.add_argument("--model", default="default", help="'default', a folder or a hub id")
    parser.add_argument("--host", default=DEFAULT_HOST)
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--served-model-name", default=DEFAULT_SERVED_MODEL_NAME)
    parser.add_argument("--max-model-len", type=int, default=DEFAULT_MAX_MODEL_LEN)
    parser.add_argument("--dtype", default=None, help="vLLM --dtype (default: the model's)")
    parser.add_argument("--enable-lora", action="store_true")
    parser.add_argument("--max-lora-rank", type=int, default=DEFAULT_MAX_LORA_RANK)
    parser.add_argument("--max-loras", type=int, default=DEFAULT_MAX_LORAS)
    parser.add_argument(
        "--cpu-defaults",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="apply the CPU defaults (default: when vllm-cpu is installed)",
    )
    parser.add_argument(
        "--api-key",
        default=default_api_key(),
        help="require this bearer token on every /v1 request (vLLM --api-key; default: "
        "$TUTOR_MODEL_API_KEY)",
    )
    parser.add_argument("--ready-timeout", type=float, default=600.0)
    parser.add_argument(
        "--nice",
        type=int,
        default=0,
        help="run vLLM at this niceness: on a machine it shares with the web server (the "
        "embedded default), the web server's short bursts of work then go first",
    )
    parser.add_argument(
        "--warmup",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="send a few short requests once ready (default: on)",
    )
    parser.add_argument("--log", type=Path, default=None, help="log file (default: stdout)")
    parser.add_argument(
        "--print-command", action="store_true", help="print the command and environment; exit"
    )
    parser.add_argument("--extra", nargs=argparse.REMAINDER, default=[], help="args for vLLM")
    args, unknown = parser.parse_known_args(argv)
    extra = [*unknown, *args.extra]

    cpu = is_vllm_cpu() if args.cpu_defaults is None else args.cpu_defaults
    common = dict(
        host=args.host,
        port=args.port,
        served_model_name=args.served_model_name or None,
        max_model_len=args.max_model_len or None,
        enable_lora=args.enable_lora,
        max_lora_rank=args.max_lora_rank,
        max_loras=args.max_loras,
        dtype=args.dtype,
        cpu=cpu,
        extra_args=extra,
    )
    if args.print_command:
        env = server_env(
            enable_lora=args.enable_lora, cpu=cpu, extra_args=extra, base={}, api_key=args.api_key
        )
        print(" ".join(f"{k}={v}" for k, v in sorted(masked_env(env).items())))
        print(" ".join(build_command(args.model, **common)))
        return 0

    server = VLLMServer(
        args.model,
        log_path=args.log or "-",
        ready_timeout=args.ready_timeout,
        warmup=args.warmup,
        die_with_parent=True,
        nice=args.nice,
        api_key=args.api_key,
        **common,
    )

    def on_signal(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    # SIGINT too: a shell that starts the launcher with `&` makes it ignore SIGINT.
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    print(f"[launcher] {' '.join(server.command)}", flush=True)
    if args.api_key:
        print("[launcher] requests need the API key (Authorization: Bearer)", flush=True)
    try:
        server.start()
        seconds = server.wait_ready()
        print(f"[launcher] ready at {server.api_base} after {seconds:.1f}s", flush=True)
        if server.warmup_seconds is not None:
            print(f"[launcher] warmed up in {server.warmup_seconds:.1f}s", flush=True)
        assert server.process is not None
        return server.process.wait()
    except KeyboardInterrupt:
        print("[launcher] stopping", flush=True)
        return 0
    except ServerStartError as exc:
        print(f"[launcher] {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        server.stop()
