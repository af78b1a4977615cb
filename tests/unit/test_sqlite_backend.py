"""The embedded default's SQLite backend (tutor.db.sqlite3): writers of one process take the
database in turn through a lock, released however the transaction ends."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from django.db.utils import ConnectionHandler

from tutor.db.sqlite3.base import write_lock

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def sqlite_access(django_db_blocker):
    """These tests open their own SQLite files, not the test database."""
    with django_db_blocker.unblock():
        yield


def sqlite_connections(path: Path, timeout: float = 20) -> ConnectionHandler:
    """Connections (one per thread, as Django keeps them) to an SQLite file, configured as the
    embedded default configures them."""
    return ConnectionHandler(
        {
            "default": {
                "ENGINE": "tutor.db.sqlite3",
                "NAME": str(path),
                "OPTIONS": {
                    "timeout": timeout,
                    "transaction_mode": "IMMEDIATE",
                    "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
                },
            }
        }
    )


def begin(connection) -> None:
    """Open a transaction the way ``transaction.atomic`` does on SQLite."""
    connection.set_autocommit(False, force_begin_transaction_with_broken_autocommit=True)


def end(connection, commit: bool = True) -> None:
    connection.commit() if commit else connection.rollback()
    connection.set_autocommit(True)


@pytest.fixture
def database(tmp_path: Path):
    path = tmp_path / "db.sqlite3"
    handler = sqlite_connections(path)
    with handler["default"].cursor() as cursor:
        cursor.execute("CREATE TABLE counter (id INTEGER PRIMARY KEY, value INTEGER)")
        cursor.execute("INSERT INTO counter VALUES (1, 0)")
    yield path, handler
    handler.close_all()


@pytest.mark.parametrize("ending", ["commit", "rollback", "close"])
def test_a_transaction_holds_the_write_lock_until_it_ends(database, ending):
    path, handler = database
    connection = handler["default"]
    lock = write_lock(str(path))
    begin(connection)
    assert lock.locked()
    if ending == "close":
        connection.close()
    else:
        end(connection, commit=ending == "commit")
    assert not lock.locked()


def test_reads_outside_transactions_do_not_take_the_lock(database):
    path, handler = database
    with handler["default"].cursor() as cursor:
        cursor.execute("SELECT value FROM counter")
        assert cursor.fetchone() == (0,)
        assert not write_lock(str(path)).locked()


def test_concurrent_read_modify_write_transactions_lose_no_update(database):
    path, _ = database
    threads, rounds = 6, 25
    handler = sqlite_connections(path)
    errors: list[BaseException] = []

    def work() -> None:
        connection = handler["default"]  # this thread's own connection
        try:
            for _ in range(rounds):
                begin(connection)
                with connection.cursor() as cursor:
                    cursor.execute("SELECT value FROM counter WHERE id = 1")
                    (value,) = cursor.fetchone()
                    cursor.execute("UPDATE counter SET value = %s WHERE id = 1", [value + 1])
                end(connection)
        except BaseException as exc:  # reported below; a thread's exception is otherwise lost
            errors.append(exc)
        finally:
            connection.close()

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert errors == []
    with handler["default"].cursor() as cursor:
        cursor.execute("SELECT value FROM counter WHERE id = 1")
        assert cursor.fetchone() == (threads * rounds,)
    assert not write_lock(str(path)).locked()
    handler.close_all()


def test_a_writer_goes_ahead_without_the_lock_after_the_timeout(tmp_path):
    """A lock that is never released (a bug elsewhere) costs a writer the connection's timeout,
    no more: it then relies on SQLite's own locking, as Django's backend does."""
    path = tmp_path / "db.sqlite3"
    handler = sqlite_connections(path, timeout=0.2)
    connection = handler["default"]
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE t (x INTEGER)")
    stuck = write_lock(str(path))
    stuck.acquire()
    try:
        begin(connection)
        with connection.cursor() as cursor:
            cursor.execute("INSERT INTO t VALUES (1)")
        end(connection)
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM t")
            assert cursor.fetchone() == (1,)
    finally:
        stuck.release()
        handler.close_all()


def test_a_failed_begin_releases_the_lock(tmp_path, monkeypatch):
    from django.db.backends.sqlite3.base import DatabaseWrapper as DjangoSQLite

    path = tmp_path / "db.sqlite3"
    handler = sqlite_connections(path)
    connection = handler["default"]

    def refuse(self):
        raise RuntimeError("BEGIN failed")

    monkeypatch.setattr(DjangoSQLite, "_start_transaction_under_autocommit", refuse)
    with pytest.raises(RuntimeError):
        begin(connection)
    assert not write_lock(str(path)).locked()
    handler.close_all()


def test_each_database_file_has_its_own_lock(tmp_path):
    assert write_lock(str(tmp_path / "a.sqlite3")) is not write_lock(str(tmp_path / "b.sqlite3"))
    assert write_lock(str(tmp_path / "a.sqlite3")) is write_lock(str(tmp_path / "a.sqlite3"))
