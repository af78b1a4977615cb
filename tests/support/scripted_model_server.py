"""A scripted OpenAI-compatible streaming server for integration tests of the consumer.

It speaks the same HTTP/SSE protocol as vLLM's ``/v1/chat/completions``, and what it does is
chosen by a keyword in the last user message, so tests can provoke what a real server only does
by accident: a slow stream, a stream that dies half way, hidden thinking split across chunks.
The end-to-end tests use a real vLLM server instead.

With ``served_models`` it also checks the requested model like vLLM does: a name it does not
serve answers 404 ("The model `x` does not exist."), and ``/v1/models``,
``/v1/load_lora_adapter`` and ``/v1/unload_lora_adapter`` behave like a server started with
``--enable-lora`` and ``VLLM_ALLOW_RUNTIME_LORA_UPDATING=True`` (a load adds the name).

With ``api_key`` every ``/v1`` route answers 401 ``{"error": "Unauthorized"}`` without
``Authorization: Bearer <api_key>``, as vLLM started with ``--api-key`` does. A request without
``"stream": true`` (the evaluation harness and rollouts) gets one JSON completion with ``n``
choices (``reply_text``). ``outage`` makes chat requests fail once ``outage_after`` of them
were answered (for ``outage_count`` requests, then it recovers; None: for good): ``"abort"``
drops the connection (the server went away), a number answers with that HTTP status.
``[leak]`` plays a model that states the answer (``leak_texts``) and recovers on the guard's
retry, or never does (``leak_attempts``).
"""

from __future__ import annotations

import asyncio
import json
import time

from aiohttp import web

from tests.support.threaded_app import ThreadedApp

NORMAL_CHUNKS = [
    "<thi",
    "nk>The answer is 6; do not say it.</th",
    "ink>Good ",
    "start! ",
    "What is $3x$?",
]


def slow_word(i: int) -> str:
    """The ``i``-th word of a ``[slow]`` reply: "worda", "wordb", ... (no digits, so the answer
    guard has no number to hold back or stop)."""
    letters = ""
    while True:
        i, rest = divmod(i, 26)
        letters = chr(ord("a") + rest) + letters
        if i == 0:
            return f"word{letters}"


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


class ScriptedModelServer(ThreadedApp):
    """Run with ``with ScriptedModelServer() as server: server.base_url``."""

    def __init__(self, served_models: set[str] | None = None, api_key: str | None = None) -> None:
        super().__init__()
        self.requests: list[dict] = []
        self.served_models = served_models
        self.api_key = api_key
        self.unauthorized = 0  # requests refused for a missing or wrong key
        self.authorizations: list[str | None] = []  # the header of every /v1 request
        self.reply_text = "Good start! What is $3x$?"  # non-streaming replies
        self.outage: str | int | None = None
        self.outage_after = 0
        self.outage_count: int | None = None
        self.chat_requests = 0
        self.failed_requests = 0
        self.loads: list[dict] = []
        # (status, body) that /v1/load_lora_adapter answers instead of loading
        self.load_error: tuple[int, dict] | None = None
        self.aborted = 0
        # "[leak]": the first ``leak_attempts`` requests of the conversation (the first try and
        # the guard's retries, which continue the assistant message) each stream the next of
        # ``leak_texts`` in ``leak_chunk``-character pieces; later ones stream ``recovery``.
        # None: the model never recovers.
        self.leak_texts = ["So the answer is 6.", "It is six!", "x = 18/3, which is 6."]
        self.leak_attempts: int | None = 1
        self.leak_chunk = 3
        self.recovery = " what do you get when you divide both sides by 3?"
        self.leak_requests = 0
        # "[queued]": seconds of silence before the first chunk, as a busy vLLM server sends
        # nothing until it schedules a request
        self.queue_seconds = 1.0

    def _in_outage(self) -> bool:
        if self.outage is None or self.chat_requests <= self.outage_after:
            return False
        return self.outage_count is None or self.failed_requests < self.outage_count

    @web.middleware
    async def _auth(self, request: web.Request, handler):
        if request.path.startswith("/v1"):
            header = request.headers.get("Authorization")
            self.authorizations.append(header)
            if self.api_key is not None and header != f"Bearer {self.api_key}":
                self.unauthorized += 1
                return web.json_response({"error": "Unauthorized"}, status=401)
        return await handler(request)

    def _completion(self, body: dict) -> web.Response:
        choices = [
            {
                "index": i,
                "message": {"role": "assistant", "content": self.reply_text},
                "finish_reason": "stop",
            }
            for i in range(int(body.get("n") or 1))
        ]
        return web.json_response(
            {
                "id": "chatcmpl-test",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body.get("model"),
                "choices": choices,
                "usage": {"prompt_tokens": 42, "completion_tokens": 17, "total_tokens": 59},
            }
        )

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(body)
        self.chat_requests += 1
        if self._in_outage():
            self.failed_requests += 1
            if self.outage == "abort":
                request.transport.abort()  # the server went away
                return web.Response()
            return web.json_response(
                {"error": {"message": "scripted outage", "code": self.outage}},
                status=int(self.outage),
            )
        if self.served_models is not None and body.get("model") not in self.served_models:
            message = f"The model `{body.get('model')}` does not exist."
            return web.json_response(
                {"error": {"message": message, "type": "NotFoundError", "code": 404}}, status=404
            )
        last_user = next(
            (m["content"] for m in reversed(body["messages"]) if m["role"] == "user"), ""
        )
        if "[refuse]" in last_user:
            return web.json_response({"error": {"message": "model not found"}}, status=404)
        if not body.get("stream"):
            return self._completion(body)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        try:
            if "[queued]" in last_user:  # then the normal reply
                await asyncio.sleep(self.queue_seconds)
            if "[slow]" in last_user:
                for i in range(200):
                    await response.write(_chunk(f"{slow_word(i)} "))
                    await asyncio.sleep(0.05)
            elif "[die]" in last_user:
                await response.write(_chunk("Let's look at "))
                await response.write(_chunk("the first step"))
                await asyncio.sleep(0.05)
                request.transport.abort()  # the server process dies mid-stream
                return response
            elif "[leak]" in last_user:
                retry = body.get("continue_final_message", False)
                self.leak_requests = self.leak_requests + 1 if retry else 1
                if self.leak_attempts is None or self.leak_requests <= self.leak_attempts:
                    text = self.leak_texts[(self.leak_requests - 1) % len(self.leak_texts)]
                else:
                    text = self.recovery
                for start in range(0, len(text), self.leak_chunk):
                    await response.write(_chunk(text[start : start + self.leak_chunk]))
                    await asyncio.sleep(0.005)
            elif "[hang]" in last_user:
                await asyncio.sleep(30)
            elif "[stall]" in last_user:
                await response.write(_chunk("Let's see"))
                await asyncio.sleep(30)  # alive, but no more tokens
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

    async def _models(self, request: web.Request) -> web.Response:
        names = sorted(self.served_models or ())
        return web.json_response({"object": "list", "data": [{"id": n} for n in names]})

    async def _load(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.loads.append(body)
        if self.load_error is not None:
            return web.json_response(self.load_error[1], status=self.load_error[0])
        if self.served_models is None:
            return web.json_response({"detail": "Not Found"}, status=404)
        self.served_models.add(body["lora_name"])
        return web.Response(text=f"Success: LoRA adapter '{body['lora_name']}' added successfully.")

    async def _unload(self, request: web.Request) -> web.Response:
        body = await request.json()
        if self.served_models is None:
            return web.json_response({"detail": "Not Found"}, status=404)
        self.served_models.discard(body["lora_name"])
        return web.Response(text="Success")

    def make_app(self) -> web.Application:
        app = web.Application(middlewares=[self._auth])
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/v1/models", self._models)
        app.router.add_post("/v1/load_lora_adapter", self._load)
        app.router.add_post("/v1/unload_lora_adapter", self._unload)
        return app
