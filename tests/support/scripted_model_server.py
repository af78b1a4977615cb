"""A scripted OpenAI-compatible streaming server for integration tests of the consumer.

It speaks the same HTTP/SSE protocol as vLLM's ``/v1/chat/completions``, and what it does is
chosen by a keyword in the last user message, so tests can provoke what a real server only does
by accident: a slow stream, a stream that dies half way, hidden thinking split across chunks.
The end-to-end tests use a real vLLM server instead.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time

from aiohttp import web

NORMAL_CHUNKS = [
    "<thi",
    "nk>The answer is 6; do not say it.</th",
    "ink>Good ",
    "start! ",
    "What is $3x$?",
]


def _chunk(text: str | None = None, finish: str | None = None, usage: dict | None = None) -> bytes:
    body = {
        "id": "chatcmpl-test",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": "scripted",
        "choices": []
        if usage
        else [
            {
                "index": 0,
                "delta": {"content": text} if text is not None else {},
                "finish_reason": finish,
            }
        ],
    }
    if usage:
        body["usage"] = usage
    return f"data: {json.dumps(body)}\n\n".encode()


class ScriptedModelServer:
    """Run with ``with ScriptedModelServer() as server: server.base_url``."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.aborted = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        sock.close()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(body)
        last_user = next(
            (m["content"] for m in reversed(body["messages"]) if m["role"] == "user"), ""
        )
        if "[refuse]" in last_user:
            return web.json_response({"error": {"message": "model not found"}}, status=404)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        try:
            if "[slow]" in last_user:
                for i in range(200):
                    await response.write(_chunk(f"word{i} "))
                    await asyncio.sleep(0.05)
            elif "[die]" in last_user:
                await response.write(_chunk("Let's look at "))
                await response.write(_chunk("the first step"))
                await asyncio.sleep(0.05)
                request.transport.abort()  # the server process dies mid-stream
                return response
            elif "[hang]" in last_user:
                await asyncio.sleep(30)
            else:
                for piece in NORMAL_CHUNKS:
                    await response.write(_chunk(piece))
                    await asyncio.sleep(0.01)
            await response.write(_chunk(finish="stop"))
            await response.write(
                _chunk(usage={"prompt_tokens": 42, "completion_tokens": 17, "total_tokens": 59})
            )
            await response.write(b"data: [DONE]\n\n")
        except ConnectionError:  # the client went away (a stopped or dropped reply)
            self.aborted += 1
        return response

    def _serve(self) -> None:
        self._loop = asyncio.new_event_loop()
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        self._runner = web.AppRunner(app)
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        self._loop.run_until_complete(site.start())
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(self._runner.cleanup())
        self._loop.close()

    def __enter__(self) -> ScriptedModelServer:
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc) -> None:
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread:
            self._thread.join(10)
