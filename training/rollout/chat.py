"""Calling a model: the :class:`ChatFn` protocol rollouts call models through, its default
:func:`openai_chat` (the shared ``openai`` async client), the per-call seeds
(:func:`derive_seed`) and timed calls."""

from __future__ import annotations

import random
import time
from collections.abc import Awaitable
from typing import Any, Protocol

import openai

from inference.client import (
    OPENAI_ERRORS,
    ModelNotFound,
    ModelServerError,
    ModelUnavailable,
    get_client,
)

from .types import Completion, EndpointConfig, Messages


class ChatFn(Protocol):
    """How rollouts call a model: ``n`` completions of ``messages``. The default is
    :func:`openai_chat`; unit tests pass a fake."""

    def __call__(
        self,
        endpoint: EndpointConfig,
        messages: Messages,
        *,
        seed: int | None,
        n: int = 1,
        max_tokens: int | None = None,
        extra_body: dict[str, Any] | None = None,
    ) -> Awaitable[list[Completion]]: ...


async def openai_chat(
    endpoint: EndpointConfig,
    messages: Messages,
    *,
    seed: int | None,
    n: int = 1,
    max_tokens: int | None = None,
    extra_body: dict[str, Any] | None = None,
) -> list[Completion]:
    """A non-streaming chat completion with the shared ``openai`` async client; transport and
    server failures become :class:`ModelServerError`."""
    client = get_client(endpoint.server_config())
    kwargs: dict[str, Any] = {}
    if endpoint.top_p is not None:
        kwargs["top_p"] = endpoint.top_p
    try:
        response = await client.chat.completions.create(
            model=endpoint.model,
            messages=messages,  # type: ignore[arg-type]
            max_tokens=max_tokens or endpoint.max_tokens,
            temperature=endpoint.temperature,
            seed=seed if endpoint.send_seed else None,
            n=n,
            extra_body=extra_body,
            **kwargs,
        )
    except (openai.APIConnectionError, openai.APITimeoutError) as exc:
        raise ModelUnavailable(f"cannot reach the model server at {endpoint.base_url}") from exc
    except openai.APIStatusError as exc:
        error = ModelNotFound if exc.status_code == 404 else ModelUnavailable
        raise error(
            f"the model server refused the request ({exc.status_code}): {str(exc.message)[:200]}",
            status_code=exc.status_code,
        ) from exc
    except OPENAI_ERRORS as exc:
        raise ModelServerError(f"the model server failed: {str(exc)[:200]}") from exc
    usage = response.usage
    choices = sorted(response.choices, key=lambda c: c.index)
    return [
        Completion(
            text=choice.message.content or "",
            finish_reason=choice.finish_reason,
            prompt_tokens=usage.prompt_tokens if usage else None,
            # usage is summed over the n choices; per-choice counts only when n == 1
            completion_tokens=usage.completion_tokens if usage and n == 1 else None,
        )
        for choice in choices
    ]


def derive_seed(seed: int | None, *parts: object) -> int | None:
    """A stable per-call seed from a base seed and labels (None stays None, i.e. unseeded)."""
    if seed is None:
        return None
    return random.Random(":".join(map(str, (seed, *parts)))).getrandbits(31)


async def _timed(
    chat: ChatFn, endpoint: EndpointConfig, messages: Messages, seed: int | None, **kw: Any
) -> tuple[list[Completion], float, float]:
    started = time.time()
    clock = time.perf_counter()
    completions = await chat(endpoint, messages, seed=seed, **kw)
    if not completions:
        raise ModelServerError("the model server returned no choices")
    return completions, started, time.perf_counter() - clock
