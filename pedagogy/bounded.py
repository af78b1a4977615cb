"""Checks on text that users or models wrote, bounded in time and memory.

math-verify (sympy underneath) can spend minutes on an answer that takes a second to type, such
as a tower of powers, and most of that time is spent in C code that no signal interrupts, so
neither math-verify's own timeouts nor a thread can stop it. Checks therefore run in a small
pool of worker processes (pebble): a check that runs past its limit has its worker killed and
replaced, and its caller gets :class:`Uncheckable` at the limit. The caller's thread (or event
loop) only waits, so one costly answer never stalls the web server or another student.

Workers are forked from a forkserver that has already imported math-verify, so a replacement
is ready in milliseconds rather than the seconds that importing sympy takes; each worker's
address space is capped, so an expression that would fill memory fails instead.

Each process (a web worker, a Celery worker, a training run) has its own pool, started on first
use or by :func:`start`. ``configure`` sets its size and the default limit before it starts.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import multiprocessing
import os
import resource
import threading
from collections.abc import Callable
from concurrent.futures import CancelledError
from dataclasses import dataclass
from typing import Any, TypeVar

from pebble import ProcessExpired, ProcessPool
from pebble.pool.process import WORKERS_NAME

logger = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_TIMEOUT_SECONDS = 0.8
DEFAULT_WORKERS = 2
# Address space of one worker: sympy and math-verify need a few hundred MB.
WORKER_MEMORY_BYTES = 2 * 1024**3
# Modules the forkserver imports once, so that every worker starts with them.
PRELOAD = ["math_verify", "sympy", "pedagogy.grading", "pedagogy.judges", "pedagogy.warm_checks"]


class Uncheckable(Exception):
    """The text could not be checked within the limits; ``reason`` says why, for a person."""

    def __init__(self, reason: str, *, costly: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        # True when the check itself ran out of time or memory (it cost a worker its limit),
        # False when the text was refused before any work was done.
        self.costly = costly


@dataclass
class _Settings:
    timeout: float = DEFAULT_TIMEOUT_SECONDS
    workers: int = DEFAULT_WORKERS


_settings = _Settings()
_pool: ProcessPool | None = None
_pool_pid: int | None = None
_lock = threading.Lock()


def configure(*, timeout: float | None = None, workers: int | None = None) -> None:
    """Set the default time limit and the pool size (a running pool keeps its size)."""
    if timeout is not None:
        if timeout <= 0:
            raise ValueError("the check timeout must be positive")
        _settings.timeout = float(timeout)
    if workers is not None:
        if workers < 1:
            raise ValueError("the check pool needs at least one worker")
        _settings.workers = int(workers)


def default_timeout() -> float:
    return _settings.timeout


def _init_worker() -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = WORKER_MEMORY_BYTES
    if hard != resource.RLIM_INFINITY:
        limit = min(hard, limit)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def _ready() -> bool:
    return True


def _pool_now() -> ProcessPool:
    """This process's pool (a forked child makes its own), started and warmed on first use."""
    global _pool, _pool_pid
    with _lock:
        if _pool is not None and _pool_pid == os.getpid():
            if _pool.active:
                return _pool
            _pool.stop()  # broken: its workers go before a new pool starts
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(PRELOAD)
        pool = ProcessPool(max_workers=_settings.workers, context=context, initializer=_init_worker)
        # The first start imports math-verify in the forkserver: wait for it here, once,
        # rather than inside the first student's time limit.
        warm = [pool.schedule(_ready) for _ in range(_settings.workers)]
        for future in warm:
            future.result(timeout=120)
        _pool, _pool_pid = pool, os.getpid()
        _stop_at_exit()
        return pool


def start() -> None:
    """Start this process's pool now (web server start-up), so no request pays for it."""
    _pool_now()


def stop() -> None:
    """Stop this process's pool and end its worker processes (at exit, and in tests)."""
    global _pool
    with _lock:
        pool, _pool = _pool, None
        if pool is None or _pool_pid != os.getpid():
            return
        pool.stop()
        try:
            pool.join(timeout=5)
        except Exception:  # a worker that will not stop is killed below
            logger.warning("the check pool did not stop in time; killing its workers")
        # Worker processes are not daemons: multiprocessing's exit handler would wait for
        # any that are left, forever.
        for child in multiprocessing.active_children():
            if child.name.startswith(WORKERS_NAME):
                child.kill()
                child.join(timeout=1)


_registered = False


def _stop_at_exit() -> None:
    """Stop the pool when the interpreter shuts down, before anything waits for its workers:
    threading's exit hooks run before the ``atexit`` handlers, among them multiprocessing's,
    which joins every non-daemon child process."""
    global _registered
    if _registered:
        return
    _registered = True
    try:
        threading._register_atexit(stop)  # type: ignore[attr-defined]
    except (AttributeError, RuntimeError):  # no such hook, or already shutting down
        atexit.register(stop)


def _failure(exc: BaseException) -> Uncheckable:
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        return Uncheckable("it takes too long to check", costly=True)
    if isinstance(exc, ProcessExpired | MemoryError):
        return Uncheckable("checking it needs too much memory", costly=True)
    if isinstance(exc, CancelledError):
        return Uncheckable("the check was cancelled")
    logger.warning("a bounded check failed: %r", exc)
    return Uncheckable("it could not be read as a mathematical expression")


def run(function: Callable[..., T], *args: Any, timeout: float | None = None) -> T:
    """``function(*args)`` in a worker process; :class:`Uncheckable` past ``timeout`` seconds
    (default: :func:`default_timeout`) of wall time, counted from this call. ``function`` must
    be importable by name (a module-level function) and its arguments picklable."""
    limit = timeout if timeout is not None else _settings.timeout
    future = _pool_now().schedule(function, args=args, timeout=limit)
    try:
        return future.result(timeout=limit)
    except BaseException as exc:
        future.cancel()  # a running task's worker is killed and replaced
        if not isinstance(exc, Exception):
            raise
        raise _failure(exc) from exc


async def arun(
    function: Callable[..., T],
    *args: Any,
    timeout: float | None = None,  # noqa: ASYNC109 (also the worker's kill deadline)
) -> T:
    """:func:`run` for an event loop: waits without blocking it."""
    limit = timeout if timeout is not None else _settings.timeout
    future = _pool_now().schedule(function, args=args, timeout=limit)
    try:
        return await asyncio.wait_for(asyncio.wrap_future(future), limit)
    except Exception as exc:
        future.cancel()
        raise _failure(exc) from exc
    except BaseException:
        future.cancel()
        raise
