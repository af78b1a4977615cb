"""Helpers for the fault tests (tests/integration/test_*_faults.py, test_redis_restart.py,
tests/e2e/test_vllm_faults.py, test_worker_kill.py)."""

from __future__ import annotations

import asyncio
import time

from asgiref.sync import sync_to_async


async def reply_lease_released(session_id: int, seconds: float = 10) -> None:
    """Wait until no reply holds the session's lease (it is released just after ``reply.end``
    is sent, so a message sent at once could be answered ``busy``)."""
    from django.core.cache import cache

    from tutor.limits import ReplyLease

    key = ReplyLease(session_id, 1).key
    get = sync_to_async(cache.get, thread_sensitive=False)
    deadline = time.monotonic() + seconds
    while await get(key) is not None:
        if time.monotonic() > deadline:
            raise AssertionError(f"the reply lease of session {session_id} was never released")
        await asyncio.sleep(0.05)


async def receive_until(ws, frame_type: str, wait: float = 10) -> tuple[dict, list[dict]]:
    """Frames up to the first of ``frame_type``: (that frame, all of them)."""
    frames: list[dict] = []
    while True:
        try:
            frame = await ws.receive_json_from(timeout=wait)
        except TimeoutError:
            raise AssertionError(f"no {frame_type!r} frame in {wait} s; got {frames}") from None
        frames.append(frame)
        if frame["type"] == frame_type:
            return frame, frames


class RedisServer:
    """A ``redis-server`` of the test's own on a free port (never the machine's shared one),
    which can be killed and started again on the same port. With ``persist`` a SIGTERM saves
    its data to ``folder`` and a restart loads it (a planned restart); SIGKILL loses what was
    not saved (a crash)."""

    def __init__(self, folder, port: int | None = None) -> None:
        from inference.launcher import free_port

        self.folder = folder
        self.port = port or free_port()
        self.process = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def start(self) -> RedisServer:
        import subprocess

        self.folder.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir",
             str(self.folder), "--save", "3600 1", "--appendonly", "no", "--protected-mode", "no"],
            stdout=open(self.folder / "redis.log", "ab"), stderr=subprocess.STDOUT,
        )  # fmt: skip
        self.wait_ready()
        return self

    def wait_ready(self, seconds: float = 10) -> None:
        import redis

        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                redis.Redis(port=self.port, socket_connect_timeout=0.5).ping()
                return
            except redis.RedisError:
                time.sleep(0.05)
        raise AssertionError(f"redis-server on port {self.port} did not start")

    def stop(self, sig=None) -> None:
        import signal

        process, self.process = self.process, None
        if process is None:
            return
        process.send_signal(sig or signal.SIGTERM)
        process.wait(10)

    def restart(self, sig=None) -> None:
        self.stop(sig)
        self.start()
