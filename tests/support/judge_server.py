"""A fake OpenAI-compatible judge server for tests of the LLM judge (inference/judge.py).

It answers ``/v1/chat/completions`` like vLLM, streaming or not, with the answer set for the
rule the request asks about (told apart by the judge's system prompt), so tests choose the
verdicts: ``server.answers["leak"] = verdict("REJECT", "gives 10")``. It can also answer
nonsense, stream without end (``endless``), wait before answering (``delay``) or refuse with an
HTTP status (``status``). Only unit and integration tests use it; the e2e test uses vLLM.
"""

from __future__ import annotations

import asyncio
import json
import time

from aiohttp import web

from tests.support.threaded_app import ThreadedApp


def verdict(decision: str, reasons: str = "") -> str:
    """A judge's answer, as the schema asks for it."""
    return json.dumps({"reasons": reasons, "decision": decision})


def _chunk(text: str | None = None, finish: str | None = None) -> bytes:
    body = {
        "id": "chatcmpl-judge",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": "fake-judge",
        "choices": [
            {
                "index": 0,
                "delta": {"content": text} if text is not None else {},
                "finish_reason": finish,
            }
        ],
    }
    return f"data: {json.dumps(body)}\n\n".encode()


class FakeJudgeServer(ThreadedApp):
    """Run with ``with FakeJudgeServer() as server: server.base_url``."""

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[dict] = []
        self.answers: dict[str, str] = {
            "leak": verdict("OK", "The tutor asks a question."),
            "pedagogy": verdict("OK", "Short and on the problem."),
        }
        self.delay = 0.0  # seconds before answering
        self.status = 200  # another status: answer with that error
        self.endless = False  # stream chunks until the client goes away
        self.chunk_chars = 7

    @staticmethod
    def rule_of(body: dict) -> str:
        system = next((m["content"] for m in body.get("messages", []) if m["role"] == "system"), "")
        return "pedagogy" if "pedagogical values" in system.split("Rule:", 1)[-1] else "leak"

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(body)
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.status != 200:
            return web.json_response(
                {"error": {"message": "judge refused", "type": "BadRequestError"}},
                status=self.status,
            )
        answer = self.answers[self.rule_of(body)]
        if not body.get("stream"):
            return web.json_response(
                {
                    "id": "chatcmpl-judge",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": "fake-judge",
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": answer},
                            "finish_reason": "stop",
                        }
                    ],
                }
            )
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        try:
            if self.endless:
                while True:
                    await response.write(_chunk("x" * 100))
                    await asyncio.sleep(0)
            for start in range(0, len(answer), self.chunk_chars):
                await response.write(_chunk(answer[start : start + self.chunk_chars]))
            await response.write(_chunk(finish="stop"))
            await response.write(b"data: [DONE]\n\n")
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        return response

    def make_app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        return app
