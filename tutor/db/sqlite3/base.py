"""Django's SQLite backend, with the writers of one process handed the database in turn.

SQLite lets one connection write at a time. The embedded default opens every transaction with
``BEGIN IMMEDIATE`` (settings ``transaction_mode``), and a connection that finds the database
taken waits in SQLite's busy handler, which sleeps 1, 2, 5, 10, 15, 20, 25, ... ms between
tries rather than waking when the holder commits. Students' messages are stored from a thread
pool, so with eight students sending at once a 1 ms insert waited up to 60 ms in those sleeps,
and that wait came before the model was asked (benchmarks/chat_latency.py).

Here the transactions of one process queue on a lock instead: the next writer starts the moment
the previous one commits or rolls back. The lock only orders writers that SQLite would serialise
anyway; other processes (the Celery worker) still meet in SQLite's busy handler. A writer that
cannot get the lock within the connection's ``timeout`` goes ahead without it, so a transaction
never waits longer than it would have on SQLite alone.
"""

from __future__ import annotations

import threading

from django.db.backends.sqlite3 import base

_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


def write_lock(name: str) -> threading.Lock:
    """The lock shared by every connection of this process to the database file ``name``."""
    with _locks_guard:
        return _locks.setdefault(name, threading.Lock())


class DatabaseWrapper(base.DatabaseWrapper):
    _held_lock: threading.Lock | None = None

    def _start_transaction_under_autocommit(self) -> None:
        lock = write_lock(str(self.settings_dict["NAME"]))
        timeout = float(self.settings_dict.get("OPTIONS", {}).get("timeout", 5))
        if lock.acquire(timeout=timeout):
            self._held_lock = lock
        try:
            super()._start_transaction_under_autocommit()
        except BaseException:
            self._release_write_lock()
            raise

    def _commit(self):
        try:
            return super()._commit()
        finally:
            self._release_write_lock()

    def _rollback(self):
        try:
            return super()._rollback()
        finally:
            self._release_write_lock()

    def _close(self):
        try:
            return super()._close()
        finally:
            self._release_write_lock()

    def _release_write_lock(self) -> None:
        lock, self._held_lock = self._held_lock, None
        if lock is not None:
            lock.release()
