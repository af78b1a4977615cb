"""The reply pipeline: from the model's stream to what a student may see.

:class:`ReplyStream` chains, for every reply the platform shows (the chat socket, evaluation,
training rollouts and the benchmarks all use it, so that what is measured is what students
see):

1. think-tag stripping (:class:`inference.thinking.ThinkStripper`): hidden planning is kept
   for teachers, never shown;
2. the answer guard (:mod:`pedagogy.guard`): visible text is released only once it is settled
   and has passed the final-answer and arithmetic checks. An attempt that fails is ended (its
   HTTP stream closed, so vLLM stops generating it) and the model asked again: the same prompt
   with a corrective instruction, continuing from the text the student already has
   (vLLM's ``continue_final_message``), so the page never shows a reply being taken back. After
   ``max_retries`` failed retries the reply ends with a safe scaffolding message instead;
3. delta coalescing (:class:`inference.coalesce.DeltaCoalescer`).

It yields :class:`Delta` events (text to show) and :class:`Blocked` events (an attempt the guard
stopped: for logs and metrics, never for the student). :attr:`ReplyStream.result` holds the
whole outcome once the stream ends, or after :meth:`ReplyStream.interrupt` when the caller
stopped it (a cancel, a model server error).
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any

from pedagogy.guard import AnswerGuard, GuardedText, Release, Violation

from .client import StreamEvent
from .coalesce import DeltaCoalescer
from .thinking import ThinkStripper

__all__ = [
    "DEFAULT_FALLBACK",
    "Blocked",
    "BlockedAttempt",
    "Delta",
    "OpenAttempt",
    "ReplyResult",
    "ReplyStream",
    "corrective_messages",
]

DEFAULT_FALLBACK = (
    "Let's work that part out together rather than me giving it away. "
    "What would you do first, and why?"
)

# vLLM's request fields that make the model continue the last (assistant) message instead of
# starting a new one.
CONTINUE_FINAL_MESSAGE = {"continue_final_message": True, "add_generation_prompt": False}

# ``open_attempt(messages, extra_body)``: the model's streamed reply to ``messages``.
OpenAttempt = Callable[
    [list[dict[str, str]], dict[str, Any] | None], AsyncGenerator[StreamEvent, None]
]


@dataclass(frozen=True)
class BlockedAttempt:
    """An attempt the guard stopped: its visible text up to the violation (the part the student
    already saw included), its hidden thinking, and why."""

    attempt: int
    text: str
    thinking: str
    reason: str
    detail: str


@dataclass(frozen=True)
class Delta:
    text: str


@dataclass(frozen=True)
class Blocked:
    attempt: BlockedAttempt


@dataclass
class ReplyResult:
    """A finished (or interrupted) reply. ``guard`` is ``""`` without a guard, else
    ``passed`` (the first attempt), ``retried`` (a later attempt) or ``fallback``."""

    text: str = ""
    thinking: str = ""
    finish_reason: str = ""
    partial: bool = False
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    time_to_first_token_ms: int | None = None
    duration_ms: int | None = None
    attempts: int = 0
    guard: str = ""
    blocked: list[BlockedAttempt] = field(default_factory=list)
    most_held_chars: int = 0

    @property
    def model_leaked(self) -> bool:
        """Whether the model itself wrote the answer (before the guard), in any attempt."""
        return any(b.reason == "answer_leak" for b in self.blocked)


def corrective_messages(
    prompt: list[dict[str, str]], released: str, violation: Violation
) -> tuple[list[dict[str, str]], dict[str, Any] | None]:
    """The prompt for asking again after ``violation``: the correction joins the system
    message, and the model continues the text the student already has (if any)."""
    messages = [dict(message) for message in prompt]
    note = f"\n\n## Correction\n{violation.correction}"
    if messages and messages[0].get("role") == "system":
        messages[0]["content"] = messages[0]["content"] + note
    else:
        messages.insert(0, {"role": "system", "content": note.strip()})
    if not released:
        return messages, None
    messages.append({"role": "assistant", "content": released})
    return messages, dict(CONTINUE_FINAL_MESSAGE)


def fallback_text(released: str, fallback: str) -> str:
    """The fallback as it continues ``released`` (a sentence cut short ends with "…")."""
    if not released.strip():
        return fallback
    tail = released.rstrip()
    joiner = "" if released != tail else " "
    if tail[-1] not in ".?!:;)":
        return f"{joiner}… {fallback}" if joiner else f"… {fallback}"
    return f"{joiner}{fallback}"


class ReplyStream:
    """One reply, streamed through the pipeline (see the module docstring).

    ``guard`` None streams unguarded (think stripping and coalescing only). ``clock`` is for
    tests.
    """

    def __init__(
        self,
        open_attempt: OpenAttempt,
        prompt: list[dict[str, str]],
        *,
        guard: AnswerGuard | None,
        max_retries: int = 2,
        fallback: str = DEFAULT_FALLBACK,
        coalesce_seconds: float = 0.0,
        check_timeout: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.open_attempt = open_attempt
        self.prompt = prompt
        self.guard = guard
        self.max_retries = max_retries
        self.fallback = fallback
        self.check_timeout = check_timeout
        self.clock = clock
        self.coalescer = DeltaCoalescer(coalesce_seconds)
        self.result = ReplyResult(guard="passed" if guard is not None else "")
        self._released = ""  # everything released to the coalescer so far
        self._thinking: list[str] = []
        self._stripper = ThinkStripper()
        self._checker: GuardedText | None = None
        self._started = clock()
        self._done = False

    def __aiter__(self) -> AsyncIterator[Delta | Blocked]:
        return self.events()

    async def events(self) -> AsyncIterator[Delta | Blocked]:
        """The reply's events, to its end (retries and fallback included)."""
        messages, extra = self.prompt, None
        while True:
            self.result.attempts += 1
            self._thinking = []
            self._stripper = ThinkStripper()
            self._checker = self.guard.start(self._released) if self.guard is not None else None
            violation = None
            async with aclosing(self.open_attempt(messages, extra)) as stream:
                async for event in stream:
                    self._account(event)
                    if not event.text:
                        continue
                    split = self._stripper.feed(event.text)
                    if split.hidden:
                        self._thinking.append(split.hidden)
                    release = self._check(split.visible)
                    ready = self._release(release.text)
                    if ready:
                        yield Delta(ready)
                    if release.violation is not None:
                        violation = release.violation
                        break  # closing the stream makes vLLM stop this attempt
            if violation is None:
                tail = self._stripper.finish()
                if tail.hidden:
                    self._thinking.append(tail.hidden)
                release = await self._finish_check(tail.visible)
                ready = self._release(release.text)
                if ready:
                    yield Delta(ready)
                violation = release.violation
            if violation is None:
                break
            blocked = self._block(violation)
            yield Blocked(blocked)
            if self.result.attempts > self.max_retries:
                self.result.guard = "fallback"
                ready = self._release(fallback_text(self._released, self.fallback))
                if ready:
                    yield Delta(ready)
                break
            self.result.guard = "retried"
            messages, extra = corrective_messages(self.prompt, self._released, violation)
        rest = self.coalescer.flush()
        self._done = True
        self._close()
        if rest:
            yield Delta(rest)

    def interrupt(self, finish_reason: str) -> str:
        """End a reply that was stopped (``finish_reason``: stopped, disconnected, error...):
        return the checked text still to send. Held text that fails its check is dropped (and
        kept as a blocked attempt)."""
        if self._done:
            return ""
        self._done = True
        tail = self._stripper.finish()
        if tail.hidden:
            self._thinking.append(tail.hidden)
        if self._checker is not None and not self._checker.guard.whole_reply:
            release = self._checker.finish(tail.visible)
            if release.violation is not None:
                self._block(release.violation)
            else:
                self._release(release.text)
        elif self._checker is None:
            self._release(tail.visible)
        self.result.partial = True
        self.result.finish_reason = finish_reason
        self._close()
        return self.coalescer.flush()

    # ---- steps --------------------------------------------------------------------------------

    def _account(self, event: StreamEvent) -> None:
        result = self.result
        if event.finish_reason:
            result.finish_reason = event.finish_reason
        if event.completion_tokens is not None:
            result.prompt_tokens = (result.prompt_tokens or 0) + (event.prompt_tokens or 0)
            result.completion_tokens = (result.completion_tokens or 0) + event.completion_tokens
        if event.text and result.time_to_first_token_ms is None:
            result.time_to_first_token_ms = round((self.clock() - self._started) * 1000)

    def _check(self, visible: str) -> Release:
        if self._checker is None:
            return Release(visible)
        release = self._checker.feed(visible)
        self.result.most_held_chars = max(self.result.most_held_chars, self._checker.most_held)
        return release

    async def _finish_check(self, visible: str) -> Release:
        if self._checker is None:
            return Release(visible)
        release = await self._checker.afinish(visible, timeout=self.check_timeout)
        self.result.most_held_chars = max(self.result.most_held_chars, self._checker.most_held)
        return release

    def _release(self, text: str) -> str | None:
        """Show ``text`` (it passed, or is the fallback): what the coalescer sends now."""
        if not text:
            return None
        self._released += text
        return self.coalescer.push(text, self.clock())

    def _block(self, violation: Violation) -> BlockedAttempt:
        checker = self._checker
        blocked = BlockedAttempt(
            attempt=self.result.attempts,
            text=checker.text if checker is not None else self._released,
            thinking="".join(self._thinking).strip(),
            reason=violation.reason,
            detail=violation.detail,
        )
        self.result.blocked.append(blocked)
        return blocked

    def _close(self) -> None:
        result = self.result
        result.text = self._released.strip()
        result.thinking = "".join(self._thinking).strip()
        result.duration_ms = round((self.clock() - self._started) * 1000)
