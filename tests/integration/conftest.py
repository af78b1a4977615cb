import pytest

from tests.support.scripted_model_server import ScriptedModelServer


@pytest.fixture
def model_server(settings):
    with ScriptedModelServer() as server:
        settings.TUTOR_MODEL_BASE_URL = server.base_url
        settings.TUTOR_MODEL_READ_TIMEOUT = 10
        yield server
