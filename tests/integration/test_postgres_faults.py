"""PostgreSQL connections terminated mid-chat (``pg_terminate_backend``): a student message is
acknowledged (the ``message`` frame) only once it is stored; a store that fails is answered with
a ``store_failed`` error frame naming the message, never lost in silence; a resend with the same
``client_id`` stores it exactly once.

To fail the store deterministically, a connection of the test's own holds an exclusive lock on
the message table, so the consumer's INSERT waits inside its transaction; then every other
connection to the test database (the waiting one among them) is terminated."""

import time
import uuid

import psycopg
import pytest
from asgiref.sync import sync_to_async as asgiref_sync_to_async
from channels.db import database_sync_to_async as sync_to_async
from django.db import connection

from tests.support.faults import receive_until, reply_lease_released
from tutor.dialogues.models import Message, TutoringSession

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def admin_connection() -> psycopg.Connection:
    """A plain psycopg connection to the test database, outside Django."""
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    params.pop("prepare_threshold", None)
    return psycopg.connect(**params)


@pytest.fixture
def tutoring_session(make_user, problem):
    return TutoringSession.objects.create(student=make_user("stu"), problem=problem)


@pytest.fixture
def harness_pid(tutoring_session):
    """The backend of this thread's Django connection, which pytest-django needs to empty the
    database afterwards: spared."""
    connection.ensure_connection()
    return connection.connection.info.backend_pid


def stored(session, client_id):
    return list(Message.objects.filter(session=session, client_id=client_id))


def wait_for_lock_waiter(admin, seconds=10) -> int:
    """The pid of the backend that waits on our lock (the consumer's INSERT)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        row = admin.execute(
            "SELECT pid FROM pg_locks WHERE NOT granted AND relation = %s::regclass",
            [Message._meta.db_table],
        ).fetchone()
        if row:
            return row[0]
        time.sleep(0.05)
    raise AssertionError("the consumer's INSERT never waited on the lock")


async def send_until_acked(ws, session, text, client_id, tries=4):
    """Send the message as the page does: again, with the same client_id, while the answer
    is ``store_failed`` (a connection killed earlier can still be met once: see the xfail
    below). Returns the acknowledgement and the frames before it."""
    for _ in range(tries):
        await reply_lease_released(session.pk)
        await ws.send_json_to({"type": "message", "text": text, "client_id": client_id})
        frame = await ws.receive_json_from(timeout=10)
        if frame["type"] == "message":
            return frame, [frame]
        assert (frame["type"], frame["code"], frame["client_id"]) == (
            "error",
            "store_failed",
            client_id,
        ), frame
    raise AssertionError(f"{client_id} was never stored in {tries} tries")


def off_thread(function):
    """Run ``function`` off Channels' shared database thread: the consumer needs that thread
    (to close old connections before each frame) while this waits."""
    return asgiref_sync_to_async(function, thread_sensitive=False)


def terminate_others(admin, spare: int) -> list[int]:
    admin.execute("SELECT pg_stat_clear_snapshot()")
    rows = admin.execute(
        "SELECT pid, pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE datname = current_database() AND pid <> pg_backend_pid() AND pid <> %s",
        [spare],
    ).fetchall()
    return [pid for pid, done in rows if done]


async def test_a_message_whose_connection_dies_mid_store_is_acked_only_once_stored(
    connect, model_server, tutoring_session, harness_pid
):
    session = tutoring_session
    student = await sync_to_async(lambda: session.student)()
    ws = await connect(session.pk, student)
    assert (await ws.receive_json_from())["type"] == "session"

    # A first exchange works, so the consumer's connections are warm.
    first = str(uuid.uuid4())
    await ws.send_json_to({"type": "message", "text": "How do I start?", "client_id": first})
    ack, _ = await receive_until(ws, "message")
    assert ack["message"]["client_id"] == first
    await receive_until(ws, "reply.end")
    await reply_lease_released(session.pk)

    admin = await off_thread(admin_connection)()
    try:
        await off_thread(admin.execute)(
            f"LOCK TABLE {Message._meta.db_table} IN ACCESS EXCLUSIVE MODE"
        )
        client_id = str(uuid.uuid4())
        await ws.send_json_to({"type": "message", "text": "Is it 3x = 18?", "client_id": client_id})
        waiter = await off_thread(wait_for_lock_waiter)(admin)
        # Not stored yet, so not acknowledged yet.
        assert await ws.receive_nothing(timeout=0.5)
        killed = await off_thread(terminate_others)(admin, harness_pid)
        assert waiter in killed
    finally:
        await off_thread(admin.rollback)()  # releases the lock

    # The insert died with its connection; it is tried once more on a new connection, and
    # only then acknowledged (a database that stays down gets `store_failed` instead).
    frame = await ws.receive_json_from(timeout=10)
    assert frame["type"] == "message", frame
    assert frame["message"]["client_id"] == client_id
    rows = await sync_to_async(stored)(session, client_id)
    assert [row.pk for row in rows] == [frame["message"]["id"]], "acknowledged means stored"
    end, _ = await receive_until(ws, "reply.end")
    assert end["message"]["partial"] is False
    ack = frame

    # A second resend (say, after a reconnect) is recognised, not stored again.
    again, _ = await send_until_acked(ws, session, "Is it 3x = 18?", client_id)
    assert again["message"]["id"] == ack["message"]["id"]
    assert len(await sync_to_async(stored)(session, client_id)) == 1
    roles = await sync_to_async(
        lambda: list(Message.objects.filter(session=session).values_list("role", flat=True))
    )()
    assert roles == ["student", "tutor", "student", "tutor"]
    await off_thread(admin.close)()
    await ws.disconnect()


async def test_connections_killed_between_messages_cost_nothing(
    connect, model_server, tutoring_session, harness_pid
):
    """Idle connections terminated under the consumer (a failover, an admin's kill): every
    message sent afterwards is acknowledged only as stored, stored once, and answered (or the
    student is told why not)."""
    session = tutoring_session
    student = await sync_to_async(lambda: session.student)()
    ws = await connect(session.pk, student)
    assert (await ws.receive_json_from())["type"] == "session"
    admin = await off_thread(admin_connection)()
    await off_thread(admin.set_autocommit)(True)
    client_ids = [str(uuid.uuid4()) for _ in range(3)]
    acked = []
    for n, client_id in enumerate(client_ids):
        await reply_lease_released(session.pk)
        await off_thread(terminate_others)(admin, harness_pid)
        await ws.send_json_to({"type": "message", "text": f"step {n}", "client_id": client_id})
        _, frames = await receive_until(ws, "reply.end", wait=5)
        acks = [f for f in frames if f["type"] == "message"]
        errors = [f for f in frames if f["type"] == "error"]
        assert len(acks) == 1 and not errors, frames
        acked.append(acks[0]["message"]["id"])
    await off_thread(admin.close)()
    for client_id, pk in zip(client_ids, acked, strict=True):
        assert [m.pk for m in await sync_to_async(stored)(session, client_id)] == [pk]
    await ws.disconnect()
