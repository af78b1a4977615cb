"""Several vLLM replicas serving one deployment (no Django).

``TUTOR_MODEL_BASE_URL`` may list several OpenAI-compatible servers, comma-separated, that
serve the same model and adapters. Each chat session is routed to one of them:

* **Stable per session.** Rendezvous hashing (highest random weight) of the session key over
  the replicas: a session always asks the same replica while it is healthy, sessions spread
  evenly, and when one replica goes down only the sessions it served move (each to its own
  next choice); they come back when it does.
* **Healthy first.** A replica that refused a connection is marked down for
  ``retry_after`` seconds (per process) and tried last meanwhile, so new requests do not wait
  on it; a request that reaches it again and succeeds marks it up.
* **Fallback before the first token only.** A request that never reached a server (connection
  refused, connect timeout) is sent to the next replica. A reply that fails once the server
  answered (an HTTP error, a stall, a stream that dies mid-reply) is not retried elsewhere:
  the student would see a second, different reply, and the model may already have spent the
  time.

A promoted LoRA adapter is loaded on every replica
(``inference.adapters.ensure_loaded`` given several URLs); a replica that restarted since, or
was down then, answers 404 for it, and ``on_missing_model`` loads it there and asks again.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

from inference.client import (
    ModelNotFound,
    ModelUnavailable,
    ServerConfig,
    StreamEvent,
    split_base_urls,
    stream_chat,
)

logger = logging.getLogger(__name__)

DEFAULT_RETRY_AFTER = 10.0  # seconds a replica that refused a connection is tried last

__all__ = [
    "DEFAULT_RETRY_AFTER",
    "HEALTH",
    "ReplicaHealth",
    "first_base_url",
    "route",
    "split_base_urls",
    "stream_routed",
]


def first_base_url(value: str | Sequence[str]) -> str:
    """The first replica a setting lists (for what must talk to one server: training)."""
    urls = split_base_urls(value)
    return urls[0] if urls else ""


def _key(url: str) -> str:
    return url.strip().rstrip("/")


class ReplicaHealth:
    """Which replicas refused a connection lately (thread-safe; one per process by default:
    :data:`HEALTH`)."""

    def __init__(
        self, retry_after: float = DEFAULT_RETRY_AFTER, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.retry_after = retry_after
        self.clock = clock
        self._down_until: dict[str, float] = {}
        self._lock = threading.Lock()

    def mark_down(self, url: str) -> None:
        with self._lock:
            self._down_until[_key(url)] = self.clock() + self.retry_after

    def mark_up(self, url: str) -> None:
        with self._lock:
            self._down_until.pop(_key(url), None)

    def is_down(self, url: str) -> bool:
        with self._lock:
            until = self._down_until.get(_key(url))
            if until is None:
                return False
            if self.clock() >= until:
                del self._down_until[_key(url)]
                return False
            return True

    def reset(self) -> None:
        with self._lock:
            self._down_until.clear()


HEALTH = ReplicaHealth()


def _weight(key: str, url: str) -> int:
    digest = hashlib.blake2b(f"{key}\x00{_key(url)}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def route(
    key: str | int | None, urls: str | Sequence[str], health: ReplicaHealth | None = HEALTH
) -> list[str]:
    """The replicas to try for ``key``, in order: its rendezvous-hash order, replicas marked
    down moved to the end (still tried: the mark may be stale). ``key`` None: a random order
    (requests that belong to no session)."""
    replicas = list(split_base_urls(urls))
    if len(replicas) <= 1:
        return replicas
    name = secrets.token_hex(8) if key is None else str(key)
    ordered = sorted(replicas, key=lambda url: _weight(name, url), reverse=True)
    if health is None:
        return ordered
    down = [url for url in ordered if health.is_down(url)]
    return [url for url in ordered if url not in down] + down


OnMissingModel = Callable[[ServerConfig], Awaitable[None]]


async def stream_routed(
    config: ServerConfig,
    *,
    key: str | int | None,
    model: str,
    messages: list[dict[str, str]],
    max_tokens: int,
    temperature: float = 0.7,
    seed: int | None = None,
    extra_body: dict[str, Any] | None = None,
    on_missing_model: OnMissingModel | None = None,
    health: ReplicaHealth | None = HEALTH,
    stream: Callable[..., AsyncIterator[StreamEvent]] = stream_chat,
) -> AsyncIterator[StreamEvent]:
    """Stream the reply from the replica ``key`` is routed to (:func:`route`).

    A replica that cannot be reached (:attr:`ModelUnavailable.unreachable`) is marked down and
    the next one asked; once all were tried the last error is raised. A replica that answers
    404 for ``model`` (:class:`ModelNotFound`: it lost or never had a runtime adapter) gets
    ``on_missing_model(replica_config)`` once, then the request again; without
    ``on_missing_model`` the 404 is raised. ``on_missing_model`` may raise
    ``ModelUnavailable(unreachable=True)`` to move on to the next replica. Whatever happens
    after the first event is raised as is, never retried. ``stream`` is for unit tests."""
    extra = {"extra_body": extra_body} if extra_body else {}
    candidates = route(key, config.base_url, health)
    if not candidates:
        raise ModelUnavailable("no model server is configured (TUTOR_MODEL_BASE_URL is empty)")
    last: ModelUnavailable | None = None
    for index, url in enumerate(candidates):
        replica = config.replica(url)
        started = False
        try:
            for attempt in (1, 2):
                try:
                    async for event in stream(
                        replica,
                        model=model,
                        messages=messages,
                        max_tokens=max_tokens,
                        temperature=temperature,
                        seed=seed,
                        **extra,
                    ):
                        if not started:
                            started = True
                            if health is not None:
                                health.mark_up(url)
                        yield event
                    return
                except ModelNotFound:
                    if started or attempt == 2 or on_missing_model is None:
                        raise
                logger.info("model server %s lacks %s; loading it there", url, model)
                await on_missing_model(replica)
        except ModelUnavailable as exc:
            if started or not exc.unreachable:
                raise
            if health is not None:
                health.mark_down(url)
            last = exc
            if index + 1 < len(candidates):
                logger.warning(
                    "model server replica %s unreachable (%s); trying %s",
                    url,
                    exc,
                    candidates[index + 1],
                )
    assert last is not None
    if len(candidates) == 1:
        raise last
    raise ModelUnavailable(
        f"none of the {len(candidates)} model server replicas could be reached; last: {last}",
        unreachable=True,
    ) from last
