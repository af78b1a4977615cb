import pytest
from channels.testing import WebsocketCommunicator
from django.test import Client

from tests.support.scripted_model_server import ScriptedModelServer
from tutor.asgi import application


@pytest.fixture
def model_server(settings):
    with ScriptedModelServer() as server:
        settings.TUTOR_MODEL_BASE_URL = server.base_url
        settings.TUTOR_MODEL_READ_TIMEOUT = 10
        yield server


@pytest.fixture
def session_cookie():
    def cookie_for(user) -> str:
        client = Client()
        client.force_login(user)
        return client.cookies["sessionid"].value

    return cookie_for


@pytest.fixture
def connect(session_cookie):
    """Open the tutor socket for a session as ``user`` (or anonymously)."""
    opened: list[WebsocketCommunicator] = []

    async def open_socket(session_id: int, user=None) -> WebsocketCommunicator:
        from channels.db import database_sync_to_async as sync_to_async

        headers = [(b"origin", b"http://testserver"), (b"host", b"testserver")]
        if user is not None:
            cookie = await sync_to_async(session_cookie)(user)
            headers.append((b"cookie", f"sessionid={cookie}".encode()))
        communicator = WebsocketCommunicator(
            application, f"/ws/sessions/{session_id}/", headers=headers
        )
        connected, _ = await communicator.connect(timeout=5)
        assert connected
        opened.append(communicator)
        return communicator

    yield open_socket
