"""The tutor chat socket: one per tutoring session (see docs/protocol.md).

The student's message is stored before the model sees it. The reply streams from the model
server in a task of its own, so the socket keeps reading (a Stop arrives while the reply is
being written) and one slow reply never holds up another socket. The tutor message is written
once, when the reply ends, is stopped, fails, or the socket drops.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.db import DatabaseError, InterfaceError

from inference import adapters, replicas
from inference.client import (
    ModelServerError,
    ModelUnavailable,
    ServerConfig,
    StreamEvent,
)
from inference.reply_stream import Delta, ReplyStream
from pedagogy.grading import AmbiguousAnswer, Uncheckable, acheck_answer, is_plain
from pedagogy.guard import AnswerGuard
from tutor import limits
from tutor.reviews.services import notify_flag_async

from . import intake, services
from .flood_gate import CLOSE_FLOODING, hold_browser
from .frames import FrameError, clean_text, parse_frame, parse_student_message
from .models import TutoringSession

logger = logging.getLogger(__name__)

CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_NOT_FOUND = 4404
# Refusals that count toward closing a flooding socket (settings.TUTOR_FLOOD_REFUSALS).
REFUSAL_CODES = frozenset({"rate_limited", "busy", "uncheckable", "too_many_attempts"})
FLOODING = (
    "Too many requests from this page were refused, so the chat is paused for {seconds} s. "
    "It reconnects by itself after that."
)
SESSION_CLOSED = "You already solved this problem. Start a new session to keep practising."
TOO_MANY_ATTEMPTS = (
    "You have used all your answer attempts for this problem. "
    "Talk it through with the tutor, or ask your teacher."
)
STORE_FAILED = (
    "Your message could not be saved (a problem on our side). Please send it again; "
    "it will not be stored twice."
)
COSTLY_COOLDOWN = (
    "Your last answer took too long to check. For a minute, please give your answer as a plain "
    "number or fraction (like 12.5 or 3/4)."
)
MODEL_ERRORS = {
    "model_unavailable": "The tutor is not available right now. Your message is saved; "
    "please try again in a moment.",
    "model_failed": "The tutor stopped unexpectedly. What it wrote is saved; "
    "please send your message again.",
}
BUSY = "The tutor is still answering (here or in another tab); wait or press Stop first."

# Cache calls (rate counters, reply leases) go over the network in production: off the event
# loop, and off Channels' shared database thread too.
take_rate = sync_to_async(limits.take, thread_sensitive=False)
hold = sync_to_async(limits.hold, thread_sensitive=False)
held = sync_to_async(limits.held, thread_sensitive=False)


# Storing the reply also publishes the post-turn check to the broker; if the broker is slow or
# down that must not hold up Channels' shared database thread (every socket's queries).
store_tutor_reply = database_sync_to_async(
    lambda session, reply: services.on_a_live_connection(
        services.store_tutor_reply, session, reply
    ),
    thread_sensitive=False,
)


def model_server_config() -> ServerConfig:
    """The model server(s): ``base_url`` lists every replica, comma-separated."""
    return ServerConfig(
        base_url=settings.TUTOR_MODEL_BASE_URL,
        api_key=settings.TUTOR_MODEL_API_KEY,
        connect_timeout=settings.TUTOR_MODEL_CONNECT_TIMEOUT,
        read_timeout=settings.TUTOR_MODEL_READ_TIMEOUT,
        first_token_timeout=settings.TUTOR_MODEL_FIRST_TOKEN_TIMEOUT,
    )


class TutorConsumer(AsyncWebsocketConsumer):
    # The chat socket receives nothing over the channel layer (it only sends alerts, through
    # the layer itself). Subscribed to a channel of its own, it was ended by the layer's
    # ConnectionError whenever Redis restarted, cutting every student's chat and reply.
    channel_layer_alias = None
    session: TutoringSession | None = None
    # The version that writes this session's replies, fixed when the session began.
    served: services.ServedModel | None = None
    reply_task: asyncio.Task | None = None
    socket_open: bool = False
    # Held while this socket's reply streams: one reply in flight per session (limits.py).
    reply_lease: limits.ReplyLease | None = None
    # When this socket's recent frames were refused (REFUSAL_CODES), newest last.
    refusals: collections.deque[float]

    # ---- connection -------------------------------------------------------------------------

    async def connect(self) -> None:
        await self.accept()
        self.socket_open = True
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self._refuse("unauthenticated", "Please log in again.", CLOSE_UNAUTHENTICATED)
            return
        self.refusals = collections.deque()
        if await held("flood", user.pk):
            await self._refuse_flooding()
            return
        session_id = self.scope["url_route"]["kwargs"]["session_id"]
        try:
            self.session = await database_sync_to_async(services.load_session_for)(user, session_id)
        except PermissionError:
            logger.warning("user %s tried to open session %s", user.pk, session_id)
            await self._refuse("forbidden", "This is not your session.", CLOSE_FORBIDDEN)
            return
        if self.session is None:
            await self._refuse("not_found", "There is no such session.", CLOSE_NOT_FOUND)
            return
        self.served = await database_sync_to_async(services.session_model)(self.session)
        await self.send_json(
            await database_sync_to_async(services.transcript_payload)(self.session)
        )

    async def disconnect(self, code: int) -> None:
        self.socket_open = False
        task = self.reply_task
        if task is not None and not task.done():
            task.cancel()
            # The task stores the partial reply before it ends.
            await asyncio.gather(task, return_exceptions=True)

    def _flooding(self) -> bool:
        """Count one refused frame; True when there were too many of late."""
        now = time.monotonic()
        self.refusals.append(now)
        while self.refusals and self.refusals[0] < now - settings.TUTOR_FLOOD_WINDOW_SECONDS:
            self.refusals.popleft()
        return len(self.refusals) > settings.TUTOR_FLOOD_REFUSALS

    async def _refuse_flooding(self) -> None:
        seconds = settings.TUTOR_FLOOD_COOLDOWN_SECONDS
        detail = FLOODING.format(seconds=seconds)
        await self._refuse("flooding", detail, CLOSE_FLOODING, retry_after=seconds)

    async def _refuse(self, code: str, detail: str, close_code: int, **extra: Any) -> None:
        await self.send_json({"type": "error", "code": code, "detail": detail, **extra})
        self.socket_open = False
        await self.close(code=close_code)

    # ---- frames -----------------------------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.session is None:
            return
        try:
            frame = parse_frame(text_data, bytes_data, settings.TUTOR_MAX_FRAME_BYTES)
            handler = self.handlers.get(frame["type"])
            if handler is None:
                raise FrameError("unknown_type", f"Unknown frame type {frame['type'][:40]!r}.")
            await handler(self, frame)
        except FrameError as exc:
            await self.send_json(exc.as_frame())
            if exc.code in REFUSAL_CODES and self._flooding():
                seconds = settings.TUTOR_FLOOD_COOLDOWN_SECONDS
                await hold("flood", self.scope["user"].pk, seconds)
                await sync_to_async(hold_browser, thread_sensitive=False)(self.scope, seconds)
                logger.warning(
                    "closing a flooding socket of user %s on session %s",
                    self.scope["user"].pk,
                    self.session.pk,
                )
                await self._refuse_flooding()
        except Exception:
            # A bug must cost the student one frame, not the socket. Whatever was stored stays
            # stored; a resent message is recognised by its client_id.
            logger.exception("frame handler failed on session %s", self.session.pk)
            await self.send_json(
                {
                    "type": "error",
                    "code": "internal",
                    "detail": "Something went wrong on our side. Please try again.",
                }
            )

    async def _rate_limit(self, scope: str, limit: int, what: str, client_id: str | None) -> None:
        user = self.scope["user"]
        wait = await take_rate(scope, user.pk, limits.Rate(limit, 60))
        if wait:
            raise FrameError(
                "rate_limited",
                f"You are sending {what} too fast. Please wait {round(wait)} s and try again.",
                client_id,
            )

    async def on_message(self, frame: dict[str, Any]) -> None:
        message = parse_student_message(frame, settings.TUTOR_MAX_MESSAGE_CHARS)
        client_id = str(message.client_id) if message.client_id else None
        await self._rate_limit(
            "message", settings.TUTOR_RATE_MESSAGES_PER_MINUTE, "messages", client_id
        )
        lease = limits.ReplyLease(
            self.session.pk,
            settings.TUTOR_MODEL_FIRST_TOKEN_TIMEOUT + settings.TUTOR_MODEL_READ_TIMEOUT,
        )
        if not await sync_to_async(lease.acquire, thread_sensitive=False)():
            raise FrameError("busy", BUSY, client_id)
        try:
            # Stored (and the prompt built) before the model is asked; see intake.py. The
            # `message` frame below is the acknowledgement: it is only sent for a stored message.
            try:
                turn = await intake.accept_student_message(
                    self.session, message.text, message.client_id
                )
            except (DatabaseError, InterfaceError):  # a dropped connection, a restart, ...
                logger.exception("could not store a message on session %s", self.session.pk)
                raise FrameError("store_failed", STORE_FAILED, client_id) from None
            if turn.closed:
                raise FrameError("session_closed", SESSION_CLOSED, client_id)
            await self.send_json(
                {"type": "message", "message": services.message_payload(turn.message)}
            )
            if turn.prompt is not None:
                self.reply_lease = lease
                self.reply_task = asyncio.create_task(self._write_reply(turn.prompt, turn.guard))
        finally:
            if self.reply_lease is not lease:
                await sync_to_async(lease.release, thread_sensitive=False)()
        if turn.announce is not None:
            # A high-severity flag on the student's message: tell the teacher now.
            await notify_flag_async(*turn.announce)

    async def on_stop(self, frame: dict[str, Any]) -> None:
        if self.reply_task is not None and not self.reply_task.done():
            self.reply_task.cancel()

    async def on_answer(self, frame: dict[str, Any]) -> None:
        answer = clean_text(
            frame.get("answer"), field="answer", max_chars=settings.TUTOR_MAX_ANSWER_CHARS
        )
        await self._rate_limit("answer", settings.TUTOR_RATE_ANSWERS_PER_MINUTE, "answers", None)
        await self._require_open(None)
        if not await database_sync_to_async(services.answer_attempts_left)(self.session):
            raise FrameError("too_many_attempts", TOO_MANY_ATTEMPTS)
        user_id = self.scope["user"].pk
        # A student whose answer ran a checking process to its limit may send only plain
        # numbers for a while: those are checked without the pool, which stays free for others.
        if not is_plain(answer, self.session.problem.text) and await held("costly-answer", user_id):
            raise FrameError("uncheckable", COSTLY_COOLDOWN)
        problem = self.session.problem
        try:
            # Single numbers in any form students write are compared here; anything else runs
            # in a process of its own with a hard time limit, while the event loop and the
            # database thread serve others.
            check = await acheck_answer(
                answer,
                problem.final_answer,
                problem_text=problem.text,
                simplest=problem.require_simplest_form,
            )
        except AmbiguousAnswer as exc:
            raise FrameError("ambiguous_answer", f"Please give one answer: {exc.reason}.") from None
        except Uncheckable as exc:
            if exc.costly:
                await hold("costly-answer", user_id, settings.TUTOR_COSTLY_ANSWER_COOLDOWN_SECONDS)
            raise FrameError(
                "uncheckable",
                f"We could not check that answer: {exc.reason}. "
                "Please write it as a number, a fraction or a short expression.",
            ) from None
        attempt = await database_sync_to_async(services.record_answer)(
            self.session, answer, check.correct
        )
        if attempt is None:
            raise FrameError("too_many_attempts", TOO_MANY_ATTEMPTS)
        await self.send_json(
            {
                "type": "answer.result",
                "attempt": services.attempt_payload(attempt),
                "session": services.session_payload(self.session),
                "feedback": check.feedback,
            }
        )

    async def on_ping(self, frame: dict[str, Any]) -> None:
        await self.send_json({"type": "pong"})

    async def on_rate(self, frame: dict[str, Any]) -> None:
        """A thumbs up or down (and an optional reason) on a tutor reply of this session."""
        request = services.parse_rating(frame)
        await self._rate_limit("rate", services.ratings_per_minute(), "ratings", None)
        rating = await database_sync_to_async(services.rate_reply)(
            self.session, self.scope["user"], request
        )
        if rating is None:
            raise FrameError("unknown_message", services.UNKNOWN_REPLY)
        await self.send_json({"type": "rated", "rating": services.reply_rating_payload(rating)})

    handlers = {
        "message": on_message,
        "stop": on_stop,
        "answer": on_answer,
        "ping": on_ping,
        "rate": on_rate,
    }

    async def _require_open(self, client_id: str | None) -> None:
        await database_sync_to_async(self.session.refresh_from_db)(fields=["status", "outcome"])
        if self.session.status != TutoringSession.Status.OPEN:
            raise FrameError("session_closed", SESSION_CLOSED, client_id)

    # ---- the tutor's reply ------------------------------------------------------------------

    async def _write_reply(self, prompt: list[dict[str, str]], guard: AnswerGuard | None) -> None:
        try:
            await self._stream_reply(prompt, guard)
        finally:
            lease, self.reply_lease = self.reply_lease, None
            if lease is not None:
                await asyncio.shield(sync_to_async(lease.release, thread_sensitive=False)())

    async def _stream_reply(self, prompt: list[dict[str, str]], guard: AnswerGuard | None) -> None:
        """Stream the reply through the pipeline (think stripping, the answer guard, coalescing:
        ``inference.reply_stream``) and forward what it releases; store the outcome."""
        reply_id = uuid.uuid4().hex
        await self.send_json({"type": "reply.start", "reply_id": reply_id})
        served = self.served or services.ServedModel(settings.TUTOR_MODEL_NAME)
        stream = ReplyStream(
            lambda messages, extra: self._stream(served, messages, extra),
            prompt,
            guard=guard,
            max_retries=settings.TUTOR_GUARD_RETRIES,
            fallback=settings.TUTOR_GUARD_FALLBACK,
            coalesce_seconds=settings.TUTOR_COALESCE_SECONDS,
            check_timeout=settings.TUTOR_CHECK_TIMEOUT_SECONDS,
        )
        error: str = ""
        error_frame: dict[str, str] | None = None
        try:
            async for event in stream:
                if isinstance(event, Delta):
                    await self._send_delta(reply_id, event.text)
                else:
                    logger.info(
                        "guard stopped attempt %s on session %s: %s",
                        event.attempt.attempt,
                        self.session.pk,
                        event.attempt.reason,
                    )
                if self.reply_lease is not None and self.reply_lease.due():
                    await sync_to_async(self.reply_lease.renew, thread_sensitive=False)()
        except asyncio.CancelledError:
            rest = stream.interrupt("stopped" if self.socket_open else "disconnected")
        except ModelServerError as exc:  # ModelUnavailable: before the first token
            code = "model_unavailable" if isinstance(exc, ModelUnavailable) else "model_failed"
            logger.warning("model server error (%s): %s", code, exc)
            error = str(exc)
            rest = stream.interrupt("error")
            error_frame = {"code": code, "detail": MODEL_ERRORS[code]}
        else:
            rest = ""
        # What the pipeline still held (checked) goes out before the end, so that the deltas
        # add up to the stored reply.
        if rest:
            await self._send_delta(reply_id, rest)
        result = stream.result
        reply = services.TutorReply(
            text=result.text,
            thinking=result.thinking,
            partial=result.partial,
            finish_reason=result.finish_reason,
            error=error,
            model_name=served.name,
            model_version_id=served.version_id,
            prompt_tokens=result.prompt_tokens,
            completion_tokens=result.completion_tokens,
            time_to_first_token_ms=result.time_to_first_token_ms,
            duration_ms=result.duration_ms,
            guard=result.guard,
            blocked=result.blocked,
        )
        stored = None
        if reply.text or reply.thinking or reply.blocked:
            # Shielded: a second cancellation (server shutdown) must not lose the reply.
            stored = await asyncio.shield(self._store_reply(reply))
            if stored is None:
                error_frame = error_frame or {
                    "code": "store_failed",
                    "detail": "The tutor's reply could not be saved. Please send your "
                    "message again.",
                }
        if error_frame is not None:
            await self.send_json({"type": "error", **error_frame})
        await self.send_json(
            {
                "type": "reply.end",
                "reply_id": reply_id,
                "message": services.message_payload(stored) if stored else None,
            }
        )

    async def _store_reply(self, reply: services.TutorReply) -> Any:
        """Store the reply (once more on a new connection if the first one was dead); None,
        logged, when the database cannot take it."""
        try:
            return await store_tutor_reply(self.session, reply)
        except (DatabaseError, InterfaceError):
            logger.exception("could not store the reply on session %s", self.session.pk)
            return None

    async def _stream(
        self,
        served: services.ServedModel,
        prompt: list[dict[str, str]],
        extra_body: dict[str, Any] | None = None,
    ) -> AsyncIterator[StreamEvent]:
        """The reply from the session's model, from the replica the session is routed to
        (``TUTOR_MODEL_BASE_URL`` may list several: ``inference/replicas.py``); one that cannot
        be reached before the first token is replaced by the next. A LoRA adapter the replica
        does not know (vLLM restarted since it was loaded at run time, or was down at
        promotion) is loaded there again from the registry, and the request retried once."""
        config = model_server_config()

        async def load_adapter(replica: ServerConfig) -> None:
            try:
                await adapters.aensure_loaded(
                    replica.base_url,
                    served.name,
                    served.adapter_path,
                    api_key=replica.api_key,
                    allowed_root=settings.TUTOR_ADAPTER_DIR,
                )
            except adapters.ServerUnreachable as exc:
                raise ModelUnavailable(str(exc), unreachable=True) from exc
            except adapters.AdapterError as exc:
                raise ModelUnavailable(f"could not load adapter {served.name}: {exc}") from exc

        async for event in replicas.stream_routed(
            config,
            key=f"session-{self.session.pk}",
            model=served.name,
            messages=prompt,
            max_tokens=settings.TUTOR_MAX_REPLY_TOKENS,
            temperature=settings.TUTOR_TEMPERATURE,
            extra_body=extra_body,
            on_missing_model=load_adapter if served.adapter_path else None,
        ):
            yield event

    async def _send_delta(self, reply_id: str, text: str) -> None:
        await self.send_json({"type": "reply.delta", "reply_id": reply_id, "text": text})

    async def send_json(self, content: dict[str, Any]) -> None:
        if self.socket_open:
            await self.send(text_data=json.dumps(content))
