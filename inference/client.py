"""Streaming chat completions from an OpenAI-compatible server (vLLM) with the ``openai``
async client, turning transport failures into two clear errors.

``ServerConfig.base_url`` may list several replicas of one deployment, comma-separated
(``TUTOR_MODEL_BASE_URL``): :func:`inference.replicas.stream_routed` routes each request to one
of them and calls :func:`stream_chat` for it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import weakref
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any, cast

import httpx
import openai
from openai import AsyncOpenAI
from openai.types.chat import ChatCompletionMessageParam

# The transport errors a call through the ``openai`` client can raise mid-stream. openai 3 runs
# on its own fork of httpx (``httpx2``), whose errors are not ``httpx``'s: catch both.
try:
    import httpx2

    HTTP_ERRORS: tuple[type[Exception], ...] = (httpx.HTTPError, httpx2.HTTPError)
    HTTP_TIMEOUTS: tuple[type[Exception], ...] = (httpx.TimeoutException, httpx2.TimeoutException)
    HTTP_TRANSPORT_ERRORS: tuple[type[Exception], ...] = (
        httpx.TransportError,
        httpx2.TransportError,
    )
except ImportError:  # an openai that runs on httpx itself
    HTTP_ERRORS = (httpx.HTTPError,)
    HTTP_TIMEOUTS = (httpx.TimeoutException,)
    HTTP_TRANSPORT_ERRORS = (httpx.TransportError,)


# What a failed call through the ``openai`` client raises.
OPENAI_ERRORS: tuple[type[Exception], ...] = (openai.APIError, *HTTP_ERRORS)


class ModelServerError(Exception):
    """The model server failed while answering (it may have sent part of a reply).
    ``status_code`` is the HTTP status when the server answered with an error."""

    def __init__(self, message: str = "", *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class ModelUnavailable(ModelServerError):
    """The model server could not be reached or refused the request before streaming.
    ``unreachable`` is true when the request never reached a server (connection refused or
    not made in time): it is safe to send it to another replica."""

    def __init__(
        self, message: str = "", *, status_code: int | None = None, unreachable: bool = False
    ) -> None:
        super().__init__(message, status_code=status_code)
        self.unreachable = unreachable


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

    @property
    def base_urls(self) -> tuple[str, ...]:
        """The replicas ``base_url`` lists (one for a single server)."""
        return split_base_urls(self.base_url)

    def replica(self, base_url: str) -> ServerConfig:
        """This configuration for one of its replicas."""
        return dataclasses.replace(self, base_url=base_url)


def split_base_urls(value: str | Sequence[str]) -> tuple[str, ...]:
    """``"http://a:8001/v1, http://b:8001/v1"`` -> the two URLs: comma-separated (or a
    sequence), blanks dropped, duplicates (ignoring a trailing slash) kept once, in order."""
    parts = value.split(",") if isinstance(value, str) else list(value)
    urls: dict[str, str] = {}
    for part in parts:
        url = str(part).strip()
        if url:
            urls.setdefault(url.rstrip("/"), url)
    return tuple(urls.values())


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
        # openai's own Timeout: the client runs on its own copy of httpx.
        timeout = openai.Timeout(read, connect=config.connect_timeout)
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
    extra_body: dict[str, Any] | None = None,
) -> AsyncIterator[StreamEvent]:
    """Yield the reply as it streams from one server. Closing the generator (e.g. on cancel)
    closes the HTTP response, which makes vLLM abort the request. ``extra_body`` carries vLLM's
    own request fields (``continue_final_message``: see :mod:`inference.reply_stream`).

    A configuration that lists several replicas is routed by
    :func:`inference.replicas.stream_routed`, which calls this for the chosen one."""
    if len(config.base_urls) > 1:
        raise ValueError(
            "several model servers are configured: route with inference.replicas.stream_routed"
        )
    if config.base_urls and config.base_urls[0] != config.base_url:
        config = config.replica(config.base_urls[0])  # " http://a/v1," -> the URL itself
    client = get_client(config)
    try:
        stream = await client.chat.completions.create(
            model=model,
            # Plain role/content dicts throughout the project; the server checks them.
            messages=cast("list[ChatCompletionMessageParam]", messages),
            max_tokens=max_tokens,
            temperature=temperature,
            seed=seed,
            stream=True,
            stream_options={"include_usage": True},
            extra_body=extra_body,
        )
    except (openai.APIConnectionError, openai.APITimeoutError) as exc:
        raise ModelUnavailable(
            f"cannot reach the model server at {config.base_url}",
            unreachable=_never_reached(exc),
        ) from exc
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
    except OPENAI_ERRORS as exc:
        raise ModelServerError(f"the model server failed mid-reply: {_short(str(exc))}") from exc


def _never_reached(exc: BaseException) -> bool:
    """True when the request cannot have reached the server: the connection was refused or
    not made in time (not a timeout while the server was working on it)."""
    seen = exc.__cause__ or exc.__context__
    for _ in range(5):  # the transport's error, wrapped by httpx (or the client's own copy)
        if seen is None:
            return False
        if isinstance(seen, httpx.ConnectError | httpx.ConnectTimeout) or type(seen).__name__ in (
            "ConnectError",
            "ConnectTimeout",
        ):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _short(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
