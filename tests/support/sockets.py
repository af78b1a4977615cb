"""Sockets of the platform for integration tests: the teacher's alert socket, and reading a
socket's frames up to one of a given type."""

from __future__ import annotations

from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator


async def teacher_socket(user, session_cookie) -> WebsocketCommunicator:
    """The teacher socket (``/ws/teacher/``) opened as ``user``, logged in with the
    ``session_cookie`` fixture; fails the test unless it connects."""
    from tutor.asgi import application  # only once Django is set up

    cookie = await database_sync_to_async(session_cookie)(user)
    headers = [
        (b"origin", b"http://testserver"),
        (b"host", b"testserver"),
        (b"cookie", f"sessionid={cookie}".encode()),
    ]
    communicator = WebsocketCommunicator(application, "/ws/teacher/", headers=headers)
    connected, _ = await communicator.connect(timeout=5)
    assert connected
    return communicator


async def receive_until(communicator, frame_type: str, wait: float = 10, collect=None) -> dict:
    """The first frame of ``frame_type``; every frame read on the way (that one included) is
    appended to ``collect`` when given."""
    while True:
        frame = await communicator.receive_json_from(timeout=wait)
        if collect is not None:
            collect.append(frame)
        if frame["type"] == frame_type:
            return frame
