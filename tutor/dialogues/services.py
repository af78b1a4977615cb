"""Database work for tutoring sessions, as plain synchronous functions.

The consumer calls these through ``database_sync_to_async``; views call them directly.
"""

from __future__ import annotations

import logging
import re
import uuid
from dataclasses import dataclass, field

from celery import current_app
from django.conf import settings
from django.db import DatabaseError, IntegrityError, InterfaceError, connection, transaction
from django.utils import timezone

from inference.prompts import ProblemContext, Turn, build_tutor_messages
from inference.reply_stream import BlockedAttempt
from pedagogy.guard import AnswerGuard
from pedagogy.judges import Uncheckable, leaked_value
from tutor.classes.models import Assignment, Classroom
from tutor.retraining.services import serving_version, version_by_name
from tutor.reviews import services as reviews
from tutor.reviews.models import Flag

from .frames import FrameError, repair_unicode
from .models import AnswerAttempt, BlockedReply, Message, ReplyRating, TutoringSession

logger = logging.getLogger(__name__)


def on_a_live_connection(function, *args):
    """``function(*args)``, tried once more on a new connection when this thread's connection
    turns out dead (a database failover, a backend killed while the connection sat idle):
    Django only notices that on use. Only for one transaction at a time, whose failure left
    nothing committed."""
    try:
        return function(*args)
    except (DatabaseError, InterfaceError):
        if connection.in_atomic_block:
            raise
        logger.warning("the database connection failed; trying once more on a new one")
        connection.close()
        return function(*args)


def session_payload(session: TutoringSession) -> dict:
    return {
        "id": session.pk,
        "status": session.status,
        "outcome": session.outcome,
        "problem": {
            "id": session.problem_id,
            "title": session.problem.title,
            "text": session.problem.text,
        },
    }


def message_payload(message: Message) -> dict:
    return {
        "id": message.pk,
        "role": message.role,
        "text": message.text,
        "partial": message.partial,
        "created_at": message.created_at.isoformat(),
        "client_id": str(message.client_id) if message.client_id else None,
    }


def attempt_payload(attempt: AnswerAttempt) -> dict:
    return {
        "answer": attempt.answer,
        "correct": attempt.correct,
        "created_at": attempt.created_at.isoformat(),
    }


def load_session_for(user, session_id: int) -> TutoringSession | None:
    """The session if ``user`` owns it; ``None`` if it does not exist.

    Raises ``PermissionError`` when it exists but belongs to somebody else.
    """
    session = TutoringSession.objects.select_related("problem").filter(pk=session_id).first()
    if session is None:
        return None
    if session.student_id != user.pk:
        raise PermissionError("this session belongs to another student")
    return session


def transcript_payload(session: TutoringSession) -> dict:
    session.refresh_from_db()
    return {
        "type": "session",
        "session": session_payload(session),
        "messages": [message_payload(m) for m in session.messages.all()],
        "attempts": [attempt_payload(a) for a in session.attempts.all()],
        # The student's own ratings of tutor replies, so thumbs survive a reload.
        "ratings": [
            reply_rating_payload(r)
            for r in ReplyRating.objects.filter(
                message__session=session, student_id=session.student_id
            ).order_by("message_id")
        ],
        "limits": {
            "max_message_chars": settings.TUTOR_MAX_MESSAGE_CHARS,
            "max_rating_reason_chars": ReplyRating.REASON_MAX_CHARS,
        },
    }


def store_student_message(
    session: TutoringSession, text: str, client_id: uuid.UUID | None
) -> tuple[Message | None, bool]:
    """Store the message if the session is open; return it and whether it is new.

    ``(None, False)`` when the session is closed. A resent ``client_id`` returns the message
    stored the first time, and False. The status check, the insert and the session's
    ``updated_at`` are one transaction, so a session closed meanwhile takes no more messages.
    The common case (a new message) costs one transaction of two statements: this is on the
    path to the tutor's first token.
    """
    try:
        with transaction.atomic():
            still_open = TutoringSession.objects.filter(
                pk=session.pk, status=TutoringSession.Status.OPEN
            ).update(updated_at=timezone.now())
            if not still_open:
                return None, False
            message = Message.objects.create(
                session=session, role=Message.Role.STUDENT, text=text, client_id=client_id
            )
    except IntegrityError:
        if client_id is None:
            raise
        # A resend (after a reconnect), or the same client_id raced in on another socket.
        return Message.objects.get(session=session, client_id=client_id), False
    return message, True


def tutor_prompt(
    session: TutoringSession, history: list[Turn] | None = None
) -> list[dict[str, str]]:
    problem = session.problem
    if history is None:
        history = session_history(session)
    return build_tutor_messages(
        ProblemContext(
            text=problem.text, final_answer=problem.final_answer, solution=problem.solution
        ),
        history,
        instructions=pedagogy_instructions(session),
        char_budget=settings.TUTOR_HISTORY_CHAR_BUDGET,
        instructions_share=settings.TUTOR_INSTRUCTIONS_SHARE,
        hidden_planning=settings.TUTOR_HIDDEN_PLANNING,
    )


def session_history(session: TutoringSession) -> list[Turn]:
    """The visible dialogue so far (blocked attempts are not part of it)."""
    return [Turn(role, text) for role, text in session.messages.values_list("role", "text")]


def reply_guard(session: TutoringSession, history: list[Turn]) -> AnswerGuard | None:
    """The answer guard for the session's next reply (``TUTOR_GUARD``), which knows what the
    student has already said: once they state the answer, the tutor may confirm it."""
    if not settings.TUTOR_GUARD:
        return None
    problem = session.problem
    return AnswerGuard(
        final_answer=problem.final_answer,
        problem_text=problem.text,
        student_texts=[turn.text for turn in history if turn.role == Message.Role.STUDENT],
        check_arithmetic=settings.TUTOR_GUARD_ARITHMETIC,
    )


def pedagogy_instructions(session: TutoringSession) -> list[str]:
    """Teacher instructions that apply to this session: the class's, then the assignment's.

    Each instruction is one non-blank line of the teacher's text. Free practice has none.
    """
    # Read fresh each turn (not from the session's cached relations), so that a teacher's edit
    # reaches sockets that are already open.
    texts = []
    if session.classroom_id is not None:
        texts += Classroom.objects.filter(pk=session.classroom_id).values_list(
            "pedagogy_instructions", flat=True
        )
    if session.assignment_id is not None:
        texts += Assignment.objects.filter(pk=session.assignment_id).values_list(
            "pedagogy_instructions", flat=True
        )
    return [line.strip() for text in texts for line in text.splitlines() if line.strip()]


@dataclass
class TutorReply:
    text: str
    thinking: str
    partial: bool
    finish_reason: str = ""
    error: str = ""
    model_name: str = ""
    model_version_id: int | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    time_to_first_token_ms: int | None = None
    duration_ms: int | None = None
    # How the answer guard let it through ("" without a guard), and the attempts it stopped.
    guard: str = ""
    blocked: list[BlockedAttempt] = field(default_factory=list)


@dataclass(frozen=True)
class ServedModel:
    """Who writes a session's replies: the served name, its registered version (None for a
    name the registry does not know) and the version's adapter folder (blank for a base)."""

    name: str
    version_id: int | None = None
    adapter_path: str = ""


def session_model(session: TutoringSession) -> ServedModel:
    """The version the session started with (new sessions take the version serving their
    class, see ``tutor.retraining.services.serving_version``; existing ones keep theirs). A
    session stored without one takes the serving version now, and keeps it."""
    if not session.model_name:
        name = serving_version(session.classroom_id).name
        TutoringSession.objects.filter(pk=session.pk, model_name="").update(model_name=name)
        session.refresh_from_db(fields=["model_name"])
    version = version_by_name(session.model_name)
    if version is None:
        return ServedModel(session.model_name)
    return ServedModel(session.model_name, version.pk, version.adapter_path)


def store_tutor_reply(session: TutoringSession, reply: TutorReply) -> Message:
    with transaction.atomic():  # one commit for both writes
        message = Message.objects.create(
            session=session,
            role=Message.Role.TUTOR,
            text=reply.text,
            thinking=reply.thinking,
            partial=reply.partial,
            finish_reason=reply.finish_reason,
            error=reply.error[:300],
            model_name=reply.model_name,
            model_version_id=reply.model_version_id,
            prompt_tokens=reply.prompt_tokens,
            completion_tokens=reply.completion_tokens,
            time_to_first_token_ms=reply.time_to_first_token_ms,
            duration_ms=reply.duration_ms,
            guard=reply.guard,
        )
        if reply.blocked:
            store_blocked_attempts(message, reply.blocked)
        TutoringSession.objects.filter(pk=session.pk).update(updated_at=timezone.now())
    queue_turn_check(message)
    return message


def store_blocked_attempts(message: Message, attempts: list[BlockedAttempt]) -> None:
    """Keep what the guard stopped (hidden from the student, shown to teachers, exported as
    negative examples) and flag it for the teacher: one flag per reason on the message."""
    rows = BlockedReply.objects.bulk_create(
        BlockedReply(
            message=message,
            attempt=attempt.attempt,
            text=attempt.text,
            thinking=attempt.thinking,
            reason=attempt.reason,
            detail=attempt.detail[:300],
        )
        for attempt in attempts
    )
    for reason in dict.fromkeys(row.reason for row in rows):
        reviews.flag_blocked_reply(message, [row for row in rows if row.reason == reason])


CHECK_TUTOR_TURN_TASK = "tutor.dialogues.tasks.check_tutor_turn"


def queue_turn_check(message: Message) -> None:
    """Ask a worker to check the turn (by task name: the task module imports this one); a
    broker outage must not lose the reply."""
    if not message.text:
        return
    try:
        current_app.send_task(CHECK_TUTOR_TURN_TASK, args=[message.pk])
    except Exception:  # the broker is down: the message is stored, the check can be re-run
        logger.exception("could not queue the turn check for message %s", message.pk)


def check_turn(message: Message) -> bool | None:
    """Whether the tutor's message revealed the answer; stores the verdict.

    A turn that cannot be checked within the limits (pedagogy.bounded) keeps no verdict
    (None) and is flagged for the teacher to read. When the LLM judge is configured
    (``TUTOR_JUDGE_BASE_URL``), it also judges the turn, in the dialogue before it, and its
    verdicts are stored and flagged (``tutor.reviews.services.judge_tutor_turn``); the
    returned value stays the rule judge's.
    """
    session = message.session
    earlier_student_texts = session.messages.filter(
        role=Message.Role.STUDENT, created_at__lte=message.created_at
    ).values_list("text", flat=True)
    try:
        value = leaked_value(
            message.text,
            session.problem.final_answer,
            problem_text=session.problem.text,
            student_texts=list(earlier_student_texts),
        )
    except Uncheckable as exc:
        logger.warning("tutor message %s could not be checked: %s", message.pk, exc.reason)
        reviews.flag_answer_leak(message, uncheckable=exc.reason)
        reviews.judge_tutor_turn(message)
        return None
    leaked = bool(value)
    Message.objects.filter(pk=message.pk).update(leaked_answer=leaked)
    if leaked:
        reviews.flag_answer_leak(message, value)
    reviews.judge_tutor_turn(message)
    return leaked


@dataclass
class StudentTurn:
    """What the consumer needs after a student message, gathered in one trip to the database
    thread: the stored message, whether it is new, the tutor's prompt (None when there is
    nothing to answer) and the notification to send for a new high-severity flag."""

    message: Message | None
    created: bool = False
    prompt: list[dict[str, str]] | None = None
    guard: AnswerGuard | None = None
    announce: tuple[list[str], dict] | None = None
    closed: bool = False


def accept_student_message(
    session: TutoringSession, text: str, client_id: uuid.UUID | None
) -> StudentTurn:
    """Store the message (unless the session is closed), moderate it and build the prompt.

    The message is committed before the prompt exists, so it is stored before the model sees it.
    """
    # Only the store is tried again on a new connection: it is one transaction (nothing
    # committed when it failed) and a resend is recognised by its client_id.
    message, created = on_a_live_connection(store_student_message, session, text, client_id)
    if message is None:
        session.refresh_from_db(fields=["status", "outcome"])
        return StudentTurn(message=None, closed=True)
    if not created:
        return StudentTurn(message=message)
    announce = None
    try:
        flag = reviews.moderate_student_message(message)
        if flag is not None and flag.severity == Flag.Severity.HIGH:
            announce = reviews.notification(flag)
    except Exception:  # moderation must never cost the student their message
        logger.exception("moderation failed for message %s", message.pk)
    history = session_history(session)
    return StudentTurn(
        message=message,
        created=True,
        prompt=tutor_prompt(session, history),
        guard=reply_guard(session, history),
        announce=announce,
    )


def answer_attempts_left(session: TutoringSession) -> int:
    """How many more answers the student may submit in this session (settings
    ``TUTOR_MAX_ANSWER_ATTEMPTS``), so that an answer cannot be found by trying them all."""
    return max(0, settings.TUTOR_MAX_ANSWER_ATTEMPTS - session.attempts.count())


def record_answer(session: TutoringSession, answer: str, correct: bool) -> AnswerAttempt | None:
    """Store a checked answer; a correct one solves and closes the session.

    ``None`` when the session has no attempts left: counted under the session's row lock, so
    answers sent from several sockets at once cannot pass the limit together.
    """
    with transaction.atomic():
        locked = TutoringSession.objects.select_for_update().get(pk=session.pk)
        if locked.attempts.count() >= settings.TUTOR_MAX_ANSWER_ATTEMPTS:
            return None
        attempt = AnswerAttempt.objects.create(session=locked, answer=answer, correct=correct)
        if correct:
            locked.outcome = TutoringSession.Outcome.SOLVED
            locked.status = TutoringSession.Status.CLOSED
            locked.solved_at = timezone.now()
        elif locked.outcome == TutoringSession.Outcome.PENDING:
            locked.outcome = TutoringSession.Outcome.INCORRECT
        locked.save(update_fields=["outcome", "status", "solved_at", "updated_at"])
    session.refresh_from_db(fields=["status", "outcome", "solved_at", "updated_at"])
    return attempt


def open_session_for(student, problem, assignment=None) -> TutoringSession:
    """The student's open session on ``problem``, or a new one.

    With ``assignment`` the session belongs to that assignment (and its class); without it, it
    is free practice. The two never resume each other's sessions.
    """
    sessions = TutoringSession.objects.filter(
        student=student, problem=problem, status=TutoringSession.Status.OPEN
    )
    if assignment is None:
        sessions = sessions.filter(assignment__isnull=True, classroom__isnull=True)
    else:
        sessions = sessions.filter(assignment=assignment)
    session = sessions.order_by("-created_at").first()
    if session is None:
        classroom_id = assignment.classroom_id if assignment is not None else None
        session = TutoringSession.objects.create(
            student=student,
            problem=problem,
            model_name=serving_version(classroom_id).name,
            assignment=assignment,
            classroom_id=classroom_id,
        )
    return session


# ---- students' ratings of tutor replies (the socket's `rate` frame, docs/protocol.md) ---------

UNKNOWN_REPLY = "There is no such tutor reply in this session to rate."
# A message id beyond PostgreSQL's bigint is no id at all (and must not reach the query).
_MAX_ID = 2**63 - 1
_REASON_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


@dataclass(frozen=True)
class RatingRequest:
    message_id: int
    helpful: bool
    reason: str


def ratings_per_minute() -> int:
    """Ratings a student may send per minute (``TUTOR_RATE_RATINGS_PER_MINUTE``)."""
    return int(getattr(settings, "TUTOR_RATE_RATINGS_PER_MINUTE", 30))


def parse_rating(frame: dict) -> RatingRequest:
    """The ``rate`` frame's fields, checked: an integer ``message_id``, a boolean ``helpful``
    and an optional ``reason`` (a string of at most ``ReplyRating.REASON_MAX_CHARS`` characters
    after control characters are removed and space trimmed; absent, null or blank: none)."""
    message_id = frame.get("message_id")
    if type(message_id) is not int or not 0 < message_id <= _MAX_ID:
        raise FrameError("bad_frame", '"message_id" must be the id of a tutor reply.')
    helpful = frame.get("helpful")
    if type(helpful) is not bool:
        raise FrameError("bad_frame", '"helpful" must be true or false.')
    reason = frame.get("reason")
    limit = ReplyRating.REASON_MAX_CHARS
    if reason is None:
        reason = ""
    elif not isinstance(reason, str):
        raise FrameError("bad_frame", '"reason" must be a string.')
    elif len(reason) > 4 * limit:  # not worth cleaning: it cannot fit
        raise FrameError("too_long", f"That reason is too long; the limit is {limit} characters.")
    # One line of plain text: newlines and other control characters become spaces.
    reason = " ".join(_REASON_CONTROL.sub(" ", repair_unicode(reason)).split())
    if len(reason) > limit:
        raise FrameError(
            "too_long",
            f"That reason is {len(reason)} characters; the limit is {limit}. Please shorten it.",
        )
    return RatingRequest(message_id=message_id, helpful=helpful, reason=reason)


def rate_reply(session: TutoringSession, student, request: RatingRequest) -> ReplyRating | None:
    """Store (or change) ``student``'s rating of a tutor reply of ``session``; None when the
    session is not theirs or the id is not a tutor reply with text in it (another session's
    message, a student message, a missing one: all alike, so nothing is revealed)."""
    if session.student_id != student.pk:
        return None
    message_id = (
        Message.objects.filter(
            pk=request.message_id, session_id=session.pk, role=Message.Role.TUTOR
        )
        .exclude(text="")
        .values_list("pk", flat=True)
        .first()
    )
    if message_id is None:
        return None
    rating, _ = ReplyRating.objects.update_or_create(
        student=student,
        message_id=message_id,
        defaults={"helpful": request.helpful, "reason": request.reason},
    )
    return rating


def reply_rating_payload(rating: ReplyRating) -> dict:
    return {
        "message_id": rating.message_id,
        "helpful": rating.helpful,
        "reason": rating.reason,
        "updated_at": rating.updated_at.isoformat(),
    }
