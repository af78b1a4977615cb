"""Per-user limits kept in Django's cache, which every web process shares (Redis in
production, see settings ``CACHES``): fixed-window counters for rates, and a lease that lets
one reply at a time stream in a tutoring session. The limits are listed in docs/protocol.md.

Both rest on the cache's atomic ``add`` and ``incr``, so two processes racing for the last
slot cannot both get it.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

from django.core.cache import cache


@dataclass(frozen=True)
class Rate:
    """At most ``limit`` events per ``seconds``."""

    limit: int
    seconds: int


def take(scope: str, who: object, rate: Rate) -> float:
    """Count one event for ``who`` under ``scope``; 0 when it is allowed, else the seconds until
    the current window ends (the event is refused and the caller tells the user so)."""
    now = time.time()
    window = int(now // rate.seconds)
    key = f"rate:{scope}:{who}:{window}"
    # add() creates the counter only if it is missing; incr() is atomic on every backend.
    cache.add(key, 0, timeout=rate.seconds + 1)
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add() and incr()
        cache.add(key, 1, timeout=rate.seconds + 1)
        count = 1
    if count <= rate.limit:
        return 0.0
    return max(1.0, (window + 1) * rate.seconds - now)


def hold(scope: str, who: object, seconds: float) -> None:
    """Mark ``who`` under ``scope`` for ``seconds`` (a cool-down), see :func:`held`."""
    cache.set(f"hold:{scope}:{who}", 1, timeout=seconds)


def held(scope: str, who: object) -> bool:
    return cache.get(f"hold:{scope}:{who}") is not None


class ReplyLease:
    """The right to stream the one reply in flight for a session, across all of a student's
    sockets and all web processes. It expires by itself after ``seconds`` (a web process that
    died keeps nobody waiting for longer), and its holder renews it while the reply streams."""

    def __init__(self, session_id: int, seconds: float) -> None:
        self.key = f"reply-lease:{session_id}"
        self.seconds = seconds
        self.token = uuid.uuid4().hex
        self.renewed_at = 0.0

    def acquire(self) -> bool:
        if cache.add(self.key, self.token, timeout=self.seconds):
            self.renewed_at = time.monotonic()
            return True
        return False

    def due(self, every: float = 30.0) -> bool:
        """Whether it is time to renew (checked per delta; renewing costs a cache call)."""
        return time.monotonic() - self.renewed_at >= every

    def renew(self) -> None:
        self.renewed_at = time.monotonic()
        cache.touch(self.key, timeout=self.seconds)

    def release(self) -> None:
        # Not atomic, but the lease is only ever taken by add(): if it expired and another
        # socket took it meanwhile, the tokens differ and it is left alone.
        if cache.get(self.key) == self.token:
            cache.delete(self.key)
