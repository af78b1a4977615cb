"""Polling until something another process or thread does has happened."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(
    predicate: Callable[[], T],
    seconds: float = 20,
    what: str | Callable[[], str] = "the condition",
    *,
    interval: float = 0.1,
) -> T:
    """``predicate()``'s first true value within ``seconds``; else an AssertionError naming
    ``what`` (a callable is asked only then, e.g. for a log's tail)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what() if callable(what) else what}")
