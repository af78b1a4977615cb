"""JSONL export of a class's tutoring sessions for research and training (docs/export.md).

One JSON object per line, one line per session. People appear only as anonymised ids: an HMAC
of the user id keyed with the site's secret key and the class id, so the same student has the
same id in every export of that class and different ids in different classes. Usernames,
names and teachers' free-text comments never appear.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Iterator

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db.models import Prefetch

from tutor.dialogues.models import Message, ReplyRating, TutoringSession
from tutor.reviews.models import Flag, TurnRating

from .models import Classroom

SCHEMA = "tutor.session-export.v1"
BATCH_SIZE = 200


def anonymise(classroom_id: int, kind: str, user_id: int) -> str:
    """A stable, non-reversible id for a person in this class's export."""
    key = f"{settings.SECRET_KEY}:class-export:{classroom_id}".encode()
    digest = hmac.new(key, f"{kind}:{user_id}".encode(), hashlib.sha256).hexdigest()
    return f"{kind[0]}_{digest[:20]}"


def _iso(value):
    return value.isoformat() if value is not None else None


def _lines(text: str) -> list[str]:
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


def session_record(session: TutoringSession, classroom_id: int) -> dict:
    problem = session.problem
    assignment = session.assignment
    instructions = _lines(session.classroom.pedagogy_instructions if session.classroom else "")
    if assignment is not None:
        instructions += _lines(assignment.pedagogy_instructions)
    return {
        "schema": SCHEMA,
        "session_id": session.pk,
        "student": anonymise(classroom_id, "student", session.student_id),
        "assignment_id": session.assignment_id,
        "assignment_title": assignment.title if assignment is not None else None,
        "problem": {
            "id": problem.pk,
            "title": problem.title,
            "text": problem.text,
            "final_answer": problem.final_answer,
            "skills": problem.skills,
            "difficulty": problem.difficulty,
            "source": problem.source,
            "source_id": problem.source_id,
        },
        "pedagogy_instructions": instructions,
        "model_name": session.model_name,
        "status": session.status,
        "outcome": session.outcome,
        "created_at": _iso(session.created_at),
        "solved_at": _iso(session.solved_at),
        "attempts": [
            {"answer": a.answer, "correct": a.correct, "created_at": _iso(a.created_at)}
            for a in session.attempts.all()
        ],
        "messages": [message_record(m, classroom_id) for m in session.messages.all()],
        "flags": [
            {
                "kind": f.kind,
                "severity": f.severity,
                "category": f.category,
                "message_id": f.message_id,
                "created_at": _iso(f.created_at),
                "resolved": f.resolved_at is not None,
                "resolved_at": _iso(f.resolved_at),
            }
            for f in session.flags.all()
        ],
    }


def message_record(message: Message, classroom_id: int) -> dict:
    return {
        "id": message.pk,
        "role": message.role,
        "text": message.text,
        "thinking": message.thinking,
        "partial": message.partial,
        "finish_reason": message.finish_reason,
        "error": message.error,
        "model_name": message.model_name,
        "prompt_tokens": message.prompt_tokens,
        "completion_tokens": message.completion_tokens,
        "time_to_first_token_ms": message.time_to_first_token_ms,
        "duration_ms": message.duration_ms,
        "leaked_answer": message.leaked_answer,
        "created_at": _iso(message.created_at),
        "ratings": [
            {
                "rater": anonymise(classroom_id, "rater", r.rater_id),
                "helpful": r.helpful,
                "no_answer_reveal": r.no_answer_reveal,
                "correct": r.correct,
                "encourages_thinking": r.encourages_thinking,
                "teacher_move": r.teacher_move,
                "gave_away_answer": r.gave_away_answer,
                "created_at": _iso(r.created_at),
                "updated_at": _iso(r.updated_at),
            }
            for r in message.ratings.all()
        ],
        # Students' thumbs on a tutor reply (the same anonymous id as the session's student).
        "student_ratings": [
            {
                "student": anonymise(classroom_id, "student", r.student_id),
                "helpful": r.helpful,
                "reason": r.reason,
                "created_at": _iso(r.created_at),
                "updated_at": _iso(r.updated_at),
            }
            for r in message.student_ratings.all()
        ],
        # How the answer guard let the reply through, and why it stopped attempts before it.
        "guard": message.guard,
        "blocked": [
            {"attempt": b.attempt, "reason": b.reason, "detail": b.detail, "text": b.text}
            for b in message.blocked_replies.all()
        ],
    }


def export_batch(classroom: Classroom, after_pk: int = 0) -> tuple[list[bytes], int | None]:
    """The next lines after session ``after_pk`` and the last pk, or ``None`` when done.

    Keyset pagination: each batch is a fixed handful of queries (sessions, attempts, messages,
    ratings, flags), so the query count grows with batches, never with messages or students.
    """
    sessions = list(
        TutoringSession.objects.filter(classroom=classroom, pk__gt=after_pk)
        .select_related("problem", "assignment", "classroom")
        .prefetch_related(
            "attempts",
            Prefetch(
                "messages",
                queryset=Message.objects.order_by("created_at", "id").prefetch_related(
                    Prefetch("ratings", queryset=TurnRating.objects.order_by("created_at", "id")),
                    Prefetch(
                        "student_ratings", queryset=ReplyRating.objects.order_by("created_at", "id")
                    ),
                    "blocked_replies",
                ),
            ),
            Prefetch("flags", queryset=Flag.objects.order_by("created_at", "id")),
        )
        .order_by("pk")[:BATCH_SIZE]
    )
    lines = [(json.dumps(session_record(s, classroom.pk)) + "\n").encode() for s in sessions]
    last = sessions[-1].pk if len(sessions) == BATCH_SIZE else None
    return lines, last


def export_lines(classroom: Classroom) -> Iterator[bytes]:
    after: int | None = 0
    while after is not None:
        lines, after = export_batch(classroom, after)
        yield from lines


async def aexport_lines(classroom: Classroom) -> AsyncIterator[bytes]:
    """The same lines for ASGI servers, one batch per trip to the database thread."""
    after: int | None = 0
    while after is not None:
        lines, after = await sync_to_async(export_batch)(classroom, after)
        for line in lines:
            yield line
