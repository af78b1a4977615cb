"""inference.adapters against a small fake of vLLM's adapter endpoints (the answers are the
ones vLLM 0.32 gives: see vllm/entrypoints/serve/lora and openai/models/serving.py)."""

from __future__ import annotations

import asyncio
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from inference import adapters

pytestmark = pytest.mark.unit


class FakeVLLM:
    """``mode``: "runtime" (--enable-lora and VLLM_ALLOW_RUNTIME_LORA_UPDATING), "no-runtime"
    (the load routes do not exist), "no-lora" (routes exist, LoRA not enabled)."""

    def __init__(self, mode: str = "runtime") -> None:
        self.mode = mode
        self.loaded: dict[str, str] = {}
        self.requests: list[tuple[str, str, dict | None]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def _send(self, status: int, body) -> None:
                data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                fake.requests.append(("GET", self.path, None))
                if self.path != "/v1/models":
                    self._send(404, {"detail": "Not Found"})
                    return
                cards = [{"id": "base-model", "object": "model"}]
                for name, path in fake.loaded.items():
                    cards.append({"id": name, "root": path, "parent": "base-model"})
                self._send(200, {"object": "list", "data": cards})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                fake.requests.append(("POST", self.path, body))
                if self.path not in ("/v1/load_lora_adapter", "/v1/unload_lora_adapter"):
                    self._send(404, {"detail": "Not Found"})
                    return
                if fake.mode == "no-runtime":
                    self._send(404, {"detail": "Not Found"})
                    return
                name = body.get("lora_name")
                if self.path == "/v1/unload_lora_adapter":
                    if name not in fake.loaded:
                        self._send(404, error(f"The lora adapter '{name}' cannot be found.", 404))
                        return
                    del fake.loaded[name]
                    self._send(200, f"Success: LoRA adapter '{name}' removed successfully.")
                    return
                if name in fake.loaded:
                    message = f"The lora adapter '{name}' has already been loaded."
                    self._send(400, error(message, 400))
                    return
                if fake.mode == "no-lora":
                    message = "LoRA is not enabled. Use --enable-lora to enable LoRA."
                    self._send(500, error(message, 500))
                    return
                path = body.get("lora_path", "")
                if path.startswith("/missing"):
                    message = f"Loading lora {name} failed: No adapter found for {path}"
                    self._send(404, error(message, 404))
                    return
                fake.loaded[name] = body["lora_path"]
                self._send(200, f"Success: LoRA adapter '{name}' added successfully.")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeVLLM:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


def error(message: str, code: int) -> dict:
    return {"error": {"message": message, "type": "BadRequestError", "param": None, "code": code}}


@pytest.fixture
def vllm():
    with FakeVLLM() as fake:
        yield fake


def test_server_root_strips_v1():
    assert adapters.server_root("http://h:8001/v1") == "http://h:8001"
    assert adapters.server_root("http://h:8001/v1/") == "http://h:8001"
    assert adapters.server_root("http://h:8001") == "http://h:8001"


def test_load_list_and_unload(vllm):
    assert adapters.list_models(vllm.base_url) == ["base-model"]
    assert adapters.load_adapter(vllm.base_url, "tutor-v1", "/adapters/tutor-v1") is True
    assert vllm.requests[-1] == (
        "POST",
        "/v1/load_lora_adapter",
        {"lora_name": "tutor-v1", "lora_path": "/adapters/tutor-v1"},
    )
    assert adapters.list_models(vllm.base_url) == ["base-model", "tutor-v1"]
    # Loading again is not an error: the server already serves it.
    assert adapters.load_adapter(vllm.base_url, "tutor-v1", "/adapters/tutor-v1") is False
    assert adapters.unload_adapter(vllm.base_url, "tutor-v1") is True
    assert adapters.unload_adapter(vllm.base_url, "tutor-v1") is False
    assert adapters.list_models(vllm.base_url) == ["base-model"]


def test_ensure_loaded_is_idempotent(vllm):
    assert adapters.ensure_loaded(vllm.base_url, "tutor-v2", "/adapters/tutor-v2") is True
    posts = [r for r in vllm.requests if r[0] == "POST"]
    assert adapters.ensure_loaded(vllm.base_url, "tutor-v2", "/adapters/tutor-v2") is False
    # The second call saw it in /v1/models and did not ask to load it again.
    assert [r for r in vllm.requests if r[0] == "POST"] == posts


def test_async_ensure_loaded(vllm):
    async def go():
        first = await adapters.aensure_loaded(vllm.base_url, "tutor-v3", "/adapters/tutor-v3")
        second = await adapters.aensure_loaded(vllm.base_url, "tutor-v3", "/adapters/tutor-v3")
        return first, second, await adapters.alist_models(vllm.base_url)

    first, second, models = asyncio.run(go())
    assert (first, second) == (True, False)
    assert "tutor-v3" in models


def test_server_without_runtime_loading_says_how_to_start_it():
    with FakeVLLM("no-runtime") as fake:
        with pytest.raises(adapters.RuntimeLoadingDisabled) as caught:
            adapters.load_adapter(fake.base_url, "tutor-v1", "/adapters/tutor-v1")
        assert "VLLM_ALLOW_RUNTIME_LORA_UPDATING=True" in str(caught.value)
        assert "--enable-lora" in str(caught.value)
        with pytest.raises(adapters.RuntimeLoadingDisabled):
            asyncio.run(adapters.aensure_loaded(fake.base_url, "tutor-v1", "/adapters/tutor-v1"))


def test_server_without_lora_says_enable_lora():
    with FakeVLLM("no-lora") as fake:
        with pytest.raises(adapters.LoRANotEnabled) as caught:
            adapters.ensure_loaded(fake.base_url, "tutor-v1", "/adapters/tutor-v1")
        assert "--enable-lora" in str(caught.value)


def test_missing_adapter_folder_is_named(vllm):
    with pytest.raises(adapters.AdapterError) as caught:
        adapters.load_adapter(vllm.base_url, "tutor-v9", "/missing/tutor-v9")
    assert not isinstance(caught.value, adapters.RuntimeLoadingDisabled)
    assert "/missing/tutor-v9" in str(caught.value)
    assert "model server's machine" in str(caught.value)


def test_unreachable_server():
    with FakeVLLM() as fake:
        url = fake.base_url
    with pytest.raises(adapters.ServerUnreachable):
        adapters.list_models(url, http_timeout=2)
