"""Student messages that arrive at the same moment are stored by one database worker, in turn.

Every student message is stored (and its prompt built) before the model is asked, so that work is
on the path to the tutor's first token. Given a thread each, messages that arrived together
fought over the GIL and the database: with eight students sending at once the last message was
stored 60 to 250 ms after it arrived, for about 2 ms of work, and the requests reached the model
server spread over that time, so that many of them missed its next batch
(benchmarks/chat_latency.py, docs/performance.md).

Here one call at a time runs on a worker thread. A message that finds the intake idle starts a
call at once; messages that arrive while a call runs wait for the next call, which takes them
all. Each message is handed back to its socket the moment it is stored, so its reply starts
while the rest of its batch is still being stored. Each message keeps its own transaction: one
that fails costs nobody else theirs.
"""

from __future__ import annotations

import asyncio
import uuid
import weakref
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from channels.db import database_sync_to_async

from . import services
from .models import TutoringSession

Item = tuple[tuple[TutoringSession, str, uuid.UUID | None], asyncio.Future]
Accept = Callable[[TutoringSession, str, uuid.UUID | None], services.StudentTurn]
RunInThread = Callable[[Callable[..., None], Any], Awaitable[None]]

MAX_BATCH = 64


def _run_in_worker_thread(function: Callable[..., None], *args: Any) -> Awaitable[None]:
    # Not Channels' shared database thread: the batch would queue behind every socket's reads.
    return database_sync_to_async(function, thread_sensitive=False)(*args)


class StudentMessageIntake:
    """Stores student messages for one event loop (see the module's docstring)."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        accept: Accept | None = None,
        run_in_thread: RunInThread = _run_in_worker_thread,
        max_batch: int = MAX_BATCH,
    ) -> None:
        self.loop = loop
        # Looked up at each call by default, so that it can be replaced in tests.
        self.accept_one = accept or (lambda *args: services.accept_student_message(*args))
        self.run_in_thread = run_in_thread
        self.max_batch = max_batch
        self.pending: deque[Item] = deque()
        self.draining: asyncio.Task | None = None
        self.calls = 0  # database calls made, for tests and curiosity

    async def accept(
        self, session: TutoringSession, text: str, client_id: uuid.UUID | None
    ) -> services.StudentTurn:
        """Store the message and build the prompt (``services.accept_student_message``)."""
        future = self.loop.create_future()
        self.pending.append(((session, text, client_id), future))
        if self.draining is None:
            self.draining = self.loop.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        batch: list[Item] = []
        try:
            while self.pending:
                size = min(self.max_batch, len(self.pending))
                batch = [self.pending.popleft() for _ in range(size)]
                self.calls += 1
                await self.run_in_thread(self._store, batch)
        except BaseException as exc:
            # The call itself failed (or the loop is shutting down): nobody may wait forever.
            # Scheduled after the results the worker has already handed back, which win.
            for _, future in [*batch, *self.pending]:
                self.loop.call_soon(self._settle, future, None, exc)
            self.pending.clear()
            if not isinstance(exc, Exception):
                raise
        finally:
            self.draining = None

    def _store(self, batch: list[Item]) -> None:
        """On the worker thread: each message in turn, each handed back once stored."""
        for (session, text, client_id), future in batch:
            try:
                turn = self.accept_one(session, text, client_id)
            except Exception as exc:
                self.loop.call_soon_threadsafe(self._settle, future, None, exc)
            else:
                self.loop.call_soon_threadsafe(self._settle, future, turn, None)

    @staticmethod
    def _settle(future: asyncio.Future, result: Any, error: BaseException | None) -> None:
        if future.done():  # its socket went away meanwhile; the message is stored all the same
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)


_intakes: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, StudentMessageIntake]
_intakes = weakref.WeakKeyDictionary()


def intake() -> StudentMessageIntake:
    """The intake of the running event loop (its futures belong to that loop)."""
    loop = asyncio.get_running_loop()
    current = _intakes.get(loop)
    if current is None:
        current = _intakes[loop] = StudentMessageIntake(loop)
    return current


async def accept_student_message(
    session: TutoringSession, text: str, client_id: uuid.UUID | None
) -> services.StudentTurn:
    return await intake().accept(session, text, client_id)
