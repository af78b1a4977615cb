"""Running the server: :class:`VLLMServer` (start vLLM in a process group of its own, wait
until it answers, warm it up, stop the whole group), the :func:`lora_endpoint` context
manager, and the helpers they use (:func:`free_port`, :func:`http_status`, preparing the
default model in a child process, :class:`ServerStartError`)."""

from __future__ import annotations

import contextlib
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
)

from .command import (
    API_KEY_ENV,
    DEFAULT_HOST,
    DEFAULT_MAX_LORA_RANK,
    DEFAULT_MAX_LORAS,
    DEFAULT_MAX_MODEL_LEN,
    build_command,
    is_vllm_cpu,
    server_env,
)


class ServerStartError(RuntimeError):
    """The vLLM server exited, or did not become ready in time."""


def free_port(host: str = DEFAULT_HOST) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


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
    # this file is inference/launcher/server.py: parents[2] is the project root
    package_root = str(Path(__file__).resolve().parents[2])
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
