"""Streaming chat completions from an OpenAI-compatible server (vLLM) with the ``openai``
async client, turning transport failures into two clear errors."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import openai
from openai import AsyncOpenAI


class ModelServerError(Exception):
    """The model server failed while answering (it may have sent part of a reply).
    ``status_code`` is the HTTP status when the server answered with an error."""

    def __init__(self, message: str = "", *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class ModelUnavailable(ModelServerError):
    """The model server could not be reached or refused the request before streaming."""


class ModelNotFound(ModelUnavailable):
    """The server answered 404 for the model name: it does not serve it (yet). A LoRA adapter
    loaded at run time is gone after vLLM restarts; load it again and retry
    (``inference.adapters.aensure_loaded``)."""


@dataclass(frozen=True)
class ServerConfig:
    """Where the model server is, and how long to wait for it.

    ``read_timeout`` bounds the silence between two chunks of a reply once it streams.
    ``first_token_timeout`` bounds the wait for the first chunk, which is longer: a busy vLLM
    server queues requests beyond its ``--max-num-seqs`` and sends nothing until one is
    scheduled, so with 32 students on a small CPU server the last of them waited over a minute
    (benchmarks/chat_latency.py). That wait is a queue, not a failure; a server that is down or
    dies is reported at once (refused or closed connection), whatever the timeouts.
    """

    base_url: str
    api_key: str = "not-needed"
    connect_timeout: float = 5.0
    read_timeout: float = 60.0
    first_token_timeout: float = 300.0


@dataclass(frozen=True)
class StreamEvent:
    """One piece of a streamed reply: text, and on the last events the finish reason and
    token usage."""

    text: str = ""
    finish_reason: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


# One client (and connection pool) per event loop and server: httpx pools are bound to the loop
# that made them.
_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[ServerConfig, AsyncOpenAI]]
_clients = weakref.WeakKeyDictionary()


def get_client(config: ServerConfig) -> AsyncOpenAI:
    loop = asyncio.get_running_loop()
    per_loop = _clients.setdefault(loop, {})
    client = per_loop.get(config)
    if client is None:
        # httpx's read timeout covers the longest silence allowed (the wait for the first
        # chunk); stream_chat enforces the shorter one between chunks.
        read = max(config.read_timeout, config.first_token_timeout)
        timeout = httpx.Timeout(read, connect=config.connect_timeout)
        client = AsyncOpenAI(
            base_url=config.base_url, api_key=config.api_key, timeout=timeout, max_retries=0
        )
        per_loop[config] = client
    return client


async def stream_chat(
    config: ServerConfig,
    *,
    model: str,
    messages: list[dict[str, str]],
    max_tokens: int,
    temperature: float = 0.7,
    seed: int | None = None,
) -> AsyncIterator[StreamEvent]:
    """Yield the reply as it streams. Closing the generator (e.g. on cancel) closes the HTTP
    response, which makes vLLM abort the request."""
    client = get_client(config)
    try:
        stream = await client.chat.completions.create(
            model=model,
            messages=messages,
            max_tokens=max_tokens,
            temperature=temperature,
            seed=seed,
            stream=True,
            stream_options={"include_usage": True},
        )
    except (openai.APIConnectionError, openai.APITimeoutError) as exc:
        raise ModelUnavailable(f"cannot reach the model server at {config.base_url}") from exc
    except openai.APIStatusError as exc:
        error = ModelNotFound if exc.status_code == 404 else ModelUnavailable
        raise error(
            f"the model server refused the request ({exc.status_code}): {_short(exc.message)}",
            status_code=exc.status_code,
        ) from exc
    try:
        async with stream:
            chunks = aiter(stream)
            first = True
            while True:
                wait = config.first_token_timeout if first else config.read_timeout
                try:
                    async with asyncio.timeout(wait):
                        chunk = await anext(chunks)
                except StopAsyncIteration:
                    break
                except TimeoutError:
                    where = "before the first token" if first else "mid-reply"
                    raise ModelServerError(
                        f"the model server sent nothing for {wait:g} s {where}"
                    ) from None
                first = False
                usage = chunk.usage
                for choice in chunk.choices:
                    text = choice.delta.content or "" if choice.delta else ""
                    if text or choice.finish_reason:
                        yield StreamEvent(text=text, finish_reason=choice.finish_reason)
                if usage is not None:
                    yield StreamEvent(
                        prompt_tokens=usage.prompt_tokens,
                        completion_tokens=usage.completion_tokens,
                    )
    except (openai.APIError, httpx.HTTPError) as exc:
        raise ModelServerError(f"the model server failed mid-reply: {_short(str(exc))}") from exc


def _short(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
