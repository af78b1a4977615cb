"""Several vLLM replicas behind TUTOR_MODEL_BASE_URL: routing (stable per session, spread,
healthy first), fallback before the first token only, and loading an adapter on every
replica (inference/replicas.py, inference/adapters.py). The streams here are fakes; the
integration and e2e tests use real servers."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from inference import adapters, replicas
from inference.client import (
    ModelNotFound,
    ModelServerError,
    ModelUnavailable,
    ServerConfig,
    StreamEvent,
    split_base_urls,
    stream_chat,
)
from tests.support.scripted_model_server import ScriptedModelServer

pytestmark = pytest.mark.unit

A, B, C = "http://a:8001/v1", "http://b:8001/v1", "http://c:8001/v1"
REPO = Path(__file__).resolve().parents[2]


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def closed_port_url() -> str:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now: connections are refused
    return f"http://127.0.0.1:{port}/v1"


# ---- configuration ------------------------------------------------------------------------------


def test_base_urls_are_split_on_commas():
    assert split_base_urls(f" {A} ,{B},, {A}/ ,") == (A, B)
    assert split_base_urls(A) == (A,)
    assert split_base_urls("") == ()
    assert ServerConfig(f"{A},{B}").base_urls == (A, B)
    assert ServerConfig(f"{A},{B}").replica(B) == ServerConfig(B)
    assert replicas.first_base_url(f"{B}, {A}") == B


def test_the_training_url_is_the_first_replica():
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tutor.settings",
        "TUTOR_MODEL_BASE_URL": f" {A}, {B}",
    }
    env.pop("TUTOR_TRAINING_BASE_URL", None)
    code = (
        "import django; django.setup(); from django.conf import settings; "
        "print(settings.TUTOR_TRAINING_BASE_URL); print(settings.TUTOR_MODEL_BASE_URL)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert out[-2:] == [A, f" {A}, {B}"]
    env["TUTOR_TRAINING_BASE_URL"] = C
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert out[-2] == C


# ---- routing ------------------------------------------------------------------------------------


def test_a_session_always_gets_the_same_replica():
    for key in ("session-1", "session-2", 3):
        first = replicas.route(key, [A, B, C], health=None)
        assert sorted(first) == [A, B, C]
        assert all(replicas.route(key, [A, B, C], health=None) == first for _ in range(5))
        # Not the listing order, nor the process's hash seed: a hash of key and URL.
        assert replicas.route(key, [C, A, B], health=None) == first


def test_sessions_spread_evenly():
    counts = Counter(replicas.route(f"session-{i}", [A, B, C], None)[0] for i in range(3000))
    assert set(counts) == {A, B, C}
    assert all(800 < n < 1200 for n in counts.values()), counts


def test_one_replica_is_routed_to_itself():
    assert replicas.route("s", A) == [A]
    assert replicas.route("s", "") == []


def test_a_down_replica_is_tried_last_and_only_its_sessions_move():
    health = replicas.ReplicaHealth(retry_after=10, clock=Clock())
    before = {i: replicas.route(f"s{i}", [A, B, C], health) for i in range(300)}
    health.mark_down(B)
    for i, order in before.items():
        after = replicas.route(f"s{i}", [A, B, C], health)
        assert after[-1] == B
        if order[0] != B:
            assert after[0] == order[0]  # a session on a healthy replica stays there
        else:
            assert after[0] == order[1]  # the next replica of its own order
    health.mark_up(B)
    assert all(replicas.route(f"s{i}", [A, B, C], health) == before[i] for i in before)


def test_a_down_mark_expires():
    clock = Clock()
    health = replicas.ReplicaHealth(retry_after=10, clock=clock)
    health.mark_down(A + "/")
    assert health.is_down(A)
    clock.now += 9.9
    assert health.is_down(A)
    clock.now += 0.2
    assert not health.is_down(A)


def test_no_key_spreads_at_random():
    firsts = {replicas.route(None, [A, B, C], None)[0] for _ in range(200)}
    assert firsts == {A, B, C}


# ---- streaming with fallback --------------------------------------------------------------------


class FakeReplicas:
    """``stream`` for stream_routed: what each replica does, by URL: "ok", "refused",
    "timeout" (reached, never answered), "status" (answered 500), "die" (fails mid-reply),
    "missing" (404 for the model until loaded)."""

    def __init__(self, **behaviour: str) -> None:
        self.behaviour = {f"http://{name}:8001/v1": what for name, what in behaviour.items()}
        self.calls: list[str] = []
        self.loaded: set[str] = set()

    async def stream(self, config: ServerConfig, **request):
        url = config.base_url
        self.calls.append(url)
        what = self.behaviour[url]
        if what == "refused":
            raise ModelUnavailable(f"cannot reach {url}", unreachable=True)
        if what == "timeout":
            raise ModelUnavailable(f"cannot reach {url}")
        if what == "status":
            raise ModelUnavailable("refused the request (500)", status_code=500)
        if what == "missing" and url not in self.loaded:
            raise ModelNotFound("404", status_code=404)
        yield StreamEvent(text=f"from {url} ")
        if what == "die":
            raise ModelServerError("the model server failed mid-reply")
        yield StreamEvent(text="end", finish_reason="stop")


def collect(fake: FakeReplicas, key: str, health=None, **kwargs) -> str:
    config = ServerConfig(",".join(fake.behaviour))

    async def go() -> str:
        parts = []
        async for event in replicas.stream_routed(
            config,
            key=key,
            model="m",
            messages=[{"role": "user", "content": "hi"}],
            max_tokens=8,
            health=health,
            stream=fake.stream,
            **kwargs,
        ):
            parts.append(event.text)
        return "".join(parts)

    return asyncio.run(go())


def key_for(first: str, urls: list[str]) -> str:
    """A session key whose first choice is ``first``."""
    return next(f"s{i}" for i in range(1000) if replicas.route(f"s{i}", urls, None)[0] == first)


def test_a_refused_replica_falls_back_to_the_next_and_is_marked_down():
    fake = FakeReplicas(a="refused", b="ok")
    urls = list(fake.behaviour)
    key = key_for(urls[0], urls)
    health = replicas.ReplicaHealth(clock=Clock())
    assert collect(fake, key, health) == f"from {urls[1]} end"
    assert fake.calls == urls
    assert health.is_down(urls[0]) and not health.is_down(urls[1])
    # The next request of the session goes straight to the healthy replica.
    fake.calls.clear()
    assert collect(fake, key, health) == f"from {urls[1]} end"
    assert fake.calls == [urls[1]]


def test_a_replica_that_answers_again_is_marked_up():
    fake = FakeReplicas(a="ok", b="ok")
    urls = list(fake.behaviour)
    health = replicas.ReplicaHealth(clock=Clock())
    health.mark_down(urls[0])
    key = key_for(urls[1], urls)
    fake.behaviour[urls[1]] = "refused"
    assert collect(fake, key, health) == f"from {urls[0]} end"
    assert not health.is_down(urls[0]) and health.is_down(urls[1])


@pytest.mark.parametrize("what", ["timeout", "status"])
def test_a_replica_that_was_reached_is_not_retried_elsewhere(what):
    fake = FakeReplicas(a=what, b="ok")
    urls = list(fake.behaviour)
    with pytest.raises(ModelUnavailable):
        collect(fake, key_for(urls[0], urls))
    assert fake.calls == [urls[0]]


def test_a_reply_that_dies_mid_stream_is_not_retried():
    fake = FakeReplicas(a="die", b="ok")
    urls = list(fake.behaviour)
    with pytest.raises(ModelServerError) as caught:
        collect(fake, key_for(urls[0], urls))
    assert not isinstance(caught.value, ModelUnavailable)
    assert fake.calls == [urls[0]]


def test_all_replicas_refused():
    fake = FakeReplicas(a="refused", b="refused")
    with pytest.raises(ModelUnavailable) as caught:
        collect(fake, "s1", replicas.ReplicaHealth(clock=Clock()))
    assert "none of the 2 model server replicas" in str(caught.value)
    assert caught.value.unreachable and len(fake.calls) == 2


def test_a_single_replica_raises_its_own_error():
    fake = FakeReplicas(a="refused")
    with pytest.raises(ModelUnavailable, match="cannot reach http://a:8001/v1"):
        collect(fake, "s1")


def test_a_missing_adapter_is_loaded_on_that_replica_and_asked_again():
    fake = FakeReplicas(a="missing", b="ok")
    urls = list(fake.behaviour)
    loads = []

    async def load(replica: ServerConfig) -> None:
        loads.append(replica.base_url)
        fake.loaded.add(replica.base_url)

    assert collect(fake, key_for(urls[0], urls), on_missing_model=load) == f"from {urls[0]} end"
    assert loads == [urls[0]] and fake.calls == [urls[0], urls[0]]


def test_a_missing_model_without_a_loader_is_raised():
    fake = FakeReplicas(a="missing", b="ok")
    urls = list(fake.behaviour)
    with pytest.raises(ModelNotFound):
        collect(fake, key_for(urls[0], urls))
    assert fake.calls == [urls[0]]


def test_a_loader_that_finds_the_replica_gone_moves_on():
    fake = FakeReplicas(a="missing", b="ok")
    urls = list(fake.behaviour)

    async def load(replica: ServerConfig) -> None:
        raise ModelUnavailable("gone", unreachable=True)

    assert collect(fake, key_for(urls[0], urls), on_missing_model=load) == f"from {urls[1]} end"


def test_a_refused_connection_is_marked_unreachable():
    async def go():
        async for _ in stream_chat(
            ServerConfig(closed_port_url(), connect_timeout=2),
            model="m",
            messages=[{"role": "user", "content": "hi"}],
            max_tokens=4,
        ):
            pass

    with pytest.raises(ModelUnavailable) as caught:
        asyncio.run(go())
    assert caught.value.unreachable


def test_stream_chat_refuses_a_list_of_replicas():
    """One server per call: a list must be routed (stream_routed), never silently cut."""

    async def go() -> None:
        async for _ in stream_chat(
            ServerConfig("http://a/v1,http://b/v1"),
            model="m",
            messages=[{"role": "user", "content": "hi"}],
            max_tokens=4,
        ):
            pass

    with pytest.raises(ValueError, match="stream_routed"):
        asyncio.run(go())


# ---- adapters on every replica ------------------------------------------------------------------


def test_an_adapter_is_loaded_on_every_replica():
    with (
        ScriptedModelServer(served_models={"base"}) as one,
        ScriptedModelServer(served_models={"base"}) as two,
    ):
        both = f"{one.base_url},{two.base_url}"
        assert adapters.ensure_loaded(both, "tutor-v1", "/adapters/tutor-v1") is True
        assert (
            one.loads == two.loads == [{"lora_name": "tutor-v1", "lora_path": "/adapters/tutor-v1"}]
        )
        assert adapters.ensure_loaded(both, "tutor-v1", "/adapters/tutor-v1") is False
        assert len(one.loads) == len(two.loads) == 1
        # One replica restarted: only it loads again.
        two.served_models.discard("tutor-v1")
        report = adapters.ensure_loaded_everywhere(both, "tutor-v1", "/adapters/tutor-v1")
        assert (report.loaded, report.already, report.failed) == (
            [two.base_url],
            [one.base_url],
            {},
        )
        assert asyncio.run(adapters.aensure_loaded(both, "tutor-v2", "/adapters/tutor-v2"))
        assert {"tutor-v2"} <= one.served_models & two.served_models


def test_a_replica_that_is_down_is_reported_and_does_not_stop_the_others():
    dead = closed_port_url()
    with ScriptedModelServer(served_models={"base"}) as alive:
        urls = f"{dead},{alive.base_url}"
        with pytest.raises(adapters.PartialLoad) as caught:
            adapters.ensure_loaded(urls, "tutor-v3", "/adapters/tutor-v3", http_timeout=2)
        report = caught.value.report
        assert report.loaded == [alive.base_url] and list(report.failed) == [dead]
        assert isinstance(report.failed[dead], adapters.ServerUnreachable)
        assert "1 of 2 replicas serve tutor-v3" in str(caught.value)
        assert dead in str(caught.value)
        assert "tutor-v3" in alive.served_models
        with pytest.raises(adapters.PartialLoad):
            asyncio.run(adapters.aload_adapter(urls, "tutor-v4", "/adapters/tutor-v4"))
        assert "tutor-v4" in alive.served_models


def test_a_path_outside_the_root_is_refused_before_any_replica_is_asked(tmp_path):
    with ScriptedModelServer(served_models={"base"}) as one:
        with pytest.raises(adapters.AdapterPathError):
            adapters.ensure_loaded(
                f"{one.base_url},{closed_port_url()}",
                "tutor-v5",
                "/etc",
                allowed_root=tmp_path,
            )
        assert one.loads == [] and one.authorizations == []


def test_several_replicas_get_the_api_key():
    with (
        ScriptedModelServer(served_models={"base"}, api_key="k") as one,
        ScriptedModelServer(served_models={"base"}, api_key="k") as two,
    ):
        adapters.ensure_loaded(f"{one.base_url},{two.base_url}", "v", "/a/v", api_key="k")
        assert one.unauthorized == two.unauthorized == 0
        assert "v" in one.served_models and "v" in two.served_models


def test_server_root_refuses_a_list():
    with pytest.raises(ValueError, match="one model server at a time"):
        adapters.server_root(f"{A},{B}")
    assert adapters.server_root(f"{A},") == "http://a:8001"
