"""Flags, ratings and who may see them, as plain synchronous functions.

Used by the review views, the chat consumer (moderation of student messages) and the Celery
post-turn check (answer leaks). High-severity flags are pushed at once over the channel layer to
the teacher of the session's class (group ``teacher-<id>``) and to platform admins
(group ``admins``); tutor/reviews/consumers.py forwards them to the browser.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Case, IntegerField, QuerySet, Value, When
from django.urls import reverse
from django.utils import timezone

from inference.judge import JudgeConfig, JudgeError, Verdict
from pedagogy.moderation import moderate
from tutor.dialogues.models import Message, TutoringSession

from .models import Flag, JudgeVerdict, TeacherMove, TurnRating

logger = logging.getLogger(__name__)

ADMINS_GROUP = "admins"
RUBRIC_FIELDS = ("helpful", "no_answer_reveal", "correct", "encourages_thinking")
MAX_COMMENT_CHARS = 4000


def teacher_group(user_id: int) -> str:
    return f"teacher-{user_id}"


# ---- who sees what ----------------------------------------------------------------------------


def can_review(user) -> bool:
    return user.is_authenticated and (user.is_teacher or user.is_platform_admin)


def reviewable_sessions(user) -> QuerySet[TutoringSession]:
    """Sessions ``user`` may review: their classes' sessions; every session for admins."""
    sessions = TutoringSession.objects.all()
    if user.is_platform_admin:
        return sessions
    if user.is_teacher:
        return sessions.filter(classroom__teacher=user)
    return sessions.none()


def visible_flags(user) -> QuerySet[Flag]:
    """Flags on the sessions ``user`` may review."""
    if user.is_platform_admin:
        return Flag.objects.all()
    return Flag.objects.filter(session__in=reviewable_sessions(user))


SEVERITY_ORDER = Case(
    When(severity=Flag.Severity.HIGH, then=Value(0)),
    When(severity=Flag.Severity.MEDIUM, then=Value(1)),
    default=Value(2),
    output_field=IntegerField(),
)


def open_flag_count(user) -> int:
    return visible_flags(user).filter(resolved_at__isnull=True).count()


# ---- payloads ---------------------------------------------------------------------------------


def flag_payload(flag: Flag) -> dict:
    session = flag.session
    return {
        "id": flag.pk,
        "kind": flag.kind,
        "kind_display": flag.get_kind_display(),
        "severity": flag.severity,
        "category": flag.category,
        "detail": flag.detail,
        "session_id": flag.session_id,
        "message_id": flag.message_id,
        "student": str(session.student),
        "problem": session.problem.title,
        "created_at": flag.created_at.isoformat(),
        "resolved": flag.resolved_at is not None,
        "review_url": reverse("reviews:session", args=[flag.session_id]),
    }


def rating_payload(rating: TurnRating) -> dict:
    return {
        "message_id": rating.message_id,
        "rater_id": rating.rater_id,
        **{field: getattr(rating, field) for field in RUBRIC_FIELDS},
        "teacher_move": rating.teacher_move,
        "gave_away_answer": rating.gave_away_answer,
        "comment": rating.comment,
        "updated_at": rating.updated_at.isoformat(),
    }


# ---- flags ------------------------------------------------------------------------------------


def raise_flag(
    session: TutoringSession,
    kind: str,
    severity: str,
    *,
    message: Message | None = None,
    category: str = "",
    detail: str = "",
    notify: bool = True,
) -> tuple[Flag, bool]:
    """Create a flag (one per message and kind); high-severity ones notify at once.

    Returns the flag and whether it is new. ``notify=False`` leaves the notification to the
    caller (the consumer sends it from async code with :func:`notify_flag_async`).
    """
    if message is not None:
        existing = Flag.objects.filter(message=message, kind=kind).first()
        if existing is not None:
            return existing, False
    try:
        with transaction.atomic():
            flag = Flag.objects.create(
                session=session,
                message=message,
                kind=kind,
                severity=severity,
                category=category,
                detail=detail,
            )
    except IntegrityError:  # raised at the same moment elsewhere (worker and teacher click)
        return Flag.objects.get(message=message, kind=kind), False
    if notify and flag.severity == Flag.Severity.HIGH:
        notify_flag(flag)
    return flag, True


def notification_groups(flag: Flag) -> list[str]:
    groups = [ADMINS_GROUP]
    classroom = flag.session.classroom
    if classroom is not None:
        groups.insert(0, teacher_group(classroom.teacher_id))
    return groups


def notification(flag: Flag) -> tuple[list[str], dict]:
    flag = Flag.objects.select_related(
        "session__student", "session__problem", "session__classroom"
    ).get(pk=flag.pk)
    return notification_groups(flag), {"type": "flag.raised", "flag": flag_payload(flag)}


def notify_flag(flag: Flag) -> None:
    """Push a flag to its teacher and the admins (from sync code: views, Celery)."""
    try:
        groups, event = notification(flag)
        layer = get_channel_layer()
        for group in groups:
            async_to_sync(layer.group_send)(group, event)
    except Exception:  # a channel layer outage must not lose the flag, which is stored
        logger.exception("could not notify about flag %s", flag.pk)


async def notify_flag_async(groups: list[str], event: dict) -> None:
    """The same from async code; ``groups`` and ``event`` come from :func:`notification`."""
    try:
        layer = get_channel_layer()
        for group in groups:
            await layer.group_send(group, event)
    except Exception:
        logger.exception("could not notify about flag %s", event["flag"]["id"])


def moderate_student_message(message: Message) -> Flag | None:
    """Run moderation on a stored student message; raise an unsafe-content flag if needed.

    The flag is not announced here: the consumer announces it without blocking a DB thread.
    """
    result = moderate(message.text)
    if not result.flagged:
        return None
    flag, created = raise_flag(
        message.session,
        Flag.Kind.UNSAFE_CONTENT,
        result.severity,
        message=message,
        category=result.category,
        detail=f"Student message matched {result.matched!r} ({result.category}).",
        notify=False,
    )
    return flag if created else None


def flag_answer_leak(message: Message, value: str = "", uncheckable: str = "") -> Flag:
    """The post-turn check found that ``message`` states the final answer (``value``, as the
    tutor wrote it), or could not check it (``uncheckable`` says why)."""
    problem = message.session.problem
    if uncheckable:
        detail = (
            f"The tutor's turn could not be checked for the final answer ({problem.final_answer}):"
            f" {uncheckable}. Please read it."
        )
    elif value:
        detail = (
            f"The tutor stated {value!r}, the final answer ({problem.final_answer}), "
            "before the student had it."
        )
    else:
        detail = f"The tutor stated the final answer ({problem.final_answer}) too early."
    flag, _ = raise_flag(
        message.session,
        Flag.Kind.ANSWER_LEAK,
        Flag.Severity.MEDIUM,
        message=message,
        category="answer",
        detail=detail,
    )
    return flag


def flag_blocked_reply(message: Message, blocked: list) -> Flag:
    """The answer guard stopped attempts at ``message`` (``BlockedReply`` rows of one reason):
    the student never saw them, but the teacher should know the model tried. A blocked leak is
    of medium severity (the model gave the answer away, the platform held it back); blocked
    false arithmetic is low."""
    problem = message.session.problem
    reason = blocked[0].reason
    found = ", ".join(repr(row.detail) for row in blocked[:3])
    if reason == "false_arithmetic":
        kind, severity = Flag.Kind.FALSE_ARITHMETIC, Flag.Severity.LOW
        detail = f"The guard stopped {len(blocked)} attempt(s) stating false arithmetic: {found}."
    else:
        kind, severity = Flag.Kind.BLOCKED_LEAK, Flag.Severity.MEDIUM
        detail = (
            f"The guard stopped {len(blocked)} attempt(s) that gave away the final answer "
            f"({problem.final_answer}): {found}. The student did not see them."
        )
    flag, _ = raise_flag(
        message.session, kind, severity, message=message, category="guard", detail=detail
    )
    return flag


def resolve_flag(flag: Flag, user) -> Flag:
    if flag.resolved_at is None:
        flag.resolved_at = timezone.now()
        flag.resolved_by = user
        flag.save(update_fields=["resolved_at", "resolved_by"])
    return flag


# ---- ratings ----------------------------------------------------------------------------------


class RatingError(ValueError):
    pass


def clean_rating(data: dict) -> dict:
    """The rating fields present in ``data``, validated; raises RatingError."""
    if not isinstance(data, dict):
        raise RatingError("Send a JSON object.")
    cleaned: dict = {}
    for field in RUBRIC_FIELDS:
        if field not in data:
            continue
        value = data[field]
        if value in (None, ""):
            cleaned[field] = None
            continue
        try:
            score = int(value)
        except (TypeError, ValueError):
            raise RatingError(f"{field} must be a whole number from 1 to 5.") from None
        if isinstance(value, bool) or str(score) != str(value).strip() or not 1 <= score <= 5:
            raise RatingError(f"{field} must be a whole number from 1 to 5.")
        cleaned[field] = score
    if "teacher_move" in data:
        move = data["teacher_move"] or ""
        if move not in {"", *TeacherMove.values}:
            raise RatingError("teacher_move must be focus, probing, telling or generic.")
        cleaned["teacher_move"] = move
    if "comment" in data:
        comment = data["comment"] or ""
        if not isinstance(comment, str) or len(comment) > MAX_COMMENT_CHARS:
            raise RatingError(f"comment must be text of at most {MAX_COMMENT_CHARS} characters.")
        cleaned["comment"] = comment.strip()
    if "gave_away_answer" in data:
        if not isinstance(data["gave_away_answer"], bool):
            raise RatingError("gave_away_answer must be true or false.")
        cleaned["gave_away_answer"] = data["gave_away_answer"]
    return cleaned


def save_rating(message: Message, rater, fields: dict) -> TurnRating:
    """Create or update (in place) ``rater``'s rating of ``message``."""
    with transaction.atomic():
        rating, _ = TurnRating.objects.select_for_update().get_or_create(
            message=message, rater=rater
        )
        for field, value in fields.items():
            setattr(rating, field, value)
        rating.save()
    return rating


def mark_gave_away_answer(message: Message, rater) -> tuple[TurnRating, Flag]:
    """One click: the rating says the turn gave the answer away, the message is marked as a
    leak and an answer-leak flag (teacher-confirmed) is raised or confirmed."""
    confirmation = f"Teacher-confirmed by {rater.get_username()}: this turn gave the answer away."
    with transaction.atomic():
        # "Does not reveal the answer" cannot stand above its lowest score for such a turn.
        rating = save_rating(message, rater, {"gave_away_answer": True, "no_answer_reveal": 1})
        Message.objects.filter(pk=message.pk).update(leaked_answer=True)
        flag, created = raise_flag(
            message.session,
            Flag.Kind.ANSWER_LEAK,
            Flag.Severity.MEDIUM,
            message=message,
            category="answer",
            detail=confirmation,
        )
        if not created and confirmation not in flag.detail:
            flag.detail = f"{flag.detail}\n{confirmation}".strip()
            flag.save(update_fields=["detail"])
    return rating, flag


# ---- the LLM judge ----------------------------------------------------------------------------


def judge_options() -> dict | None:
    """The LLM judge's settings as :class:`inference.judge.JudgeConfig` options (API key
    included: keep the dict out of stored rows); None when the judge is off
    (``TUTOR_JUDGE_BASE_URL`` empty)."""
    if not settings.TUTOR_JUDGE_BASE_URL:
        return None
    return {
        "base_url": settings.TUTOR_JUDGE_BASE_URL,
        "model": settings.TUTOR_JUDGE_MODEL,
        "api_key": settings.TUTOR_JUDGE_API_KEY,
        "timeout": settings.TUTOR_JUDGE_TIMEOUT_SECONDS,
        "max_tokens": settings.TUTOR_JUDGE_MAX_TOKENS,
    }


def judge_config() -> JudgeConfig | None:
    """The LLM judge of the post-turn check, from settings; None when it is off."""
    options = judge_options()
    return JudgeConfig.from_dict(options) if options is not None else None


# Turns of history the LLM judge is sent at most (inference.judge also caps the characters).
JUDGE_HISTORY_TURNS = 40


def judge_tutor_turn(message: Message) -> list[JudgeVerdict]:
    """The post-turn check's LLM judge: its verdicts on a tutor turn, in the dialogue before
    it, stored and flagged (:func:`record_judge_verdicts`); [] when the judge is off. A judge
    that fails (timeout, down, nonsense) is logged and leaves no verdict: it never fails the
    check, and the rule judge's verdict stands."""
    from inference.judge import judge_turn
    from inference.prompts import Turn

    config = judge_config()
    if config is None:
        return []
    session = message.session
    earlier = session.messages.filter(created_at__lt=message.created_at).exclude(pk=message.pk)
    newest = earlier.order_by("-created_at", "-id").values_list("role", "text")
    history = [Turn(role=role, text=text) for role, text in reversed(newest[:JUDGE_HISTORY_TURNS])]
    try:
        verdicts = judge_turn(
            config,
            problem=session.problem.text,
            final_answer=session.problem.final_answer,
            history=history,
            reply=message.text,
        )
        return record_judge_verdicts(message, verdicts)
    except Exception:  # the judge is advisory: the post-turn check must finish without it
        logger.exception("the LLM judge failed on message %s", message.pk)
        return []


def _judge_line(verdict: Verdict) -> str:
    return f"LLM judge ({verdict.model}): {verdict.reasons or 'no reasons given'}"


def record_judge_verdicts(
    message: Message, verdicts: Mapping[str, Verdict | JudgeError]
) -> list[JudgeVerdict]:
    """Store the LLM judge's verdicts on a tutor turn (one per rule, replaced when judged
    again) and flag the failed ones: a failed ``leak`` verdict raises the answer-leak flag, or
    adds the judge's reasons to the one the rule judge raised; a failed ``pedagogy`` verdict
    raises a low-severity pedagogy flag. A rule the judge gave no verdict on is logged and
    leaves nothing."""
    stored = []
    for rule, verdict in verdicts.items():
        if isinstance(verdict, JudgeError):
            logger.warning(
                "the LLM judge gave no %s verdict on message %s (%s): %s",
                rule,
                message.pk,
                verdict.kind,
                verdict,
            )
            continue
        if rule not in JudgeVerdict.Rule.values:
            continue
        row, _ = JudgeVerdict.objects.update_or_create(
            message=message,
            rule=rule,
            defaults={
                "passed": verdict.passed,
                "reasons": verdict.reasons,
                "judge_model": verdict.model[:200],
            },
        )
        stored.append(row)
        if not verdict.passed:
            _flag_judge_verdict(message, verdict)
    return stored


def _flag_judge_verdict(message: Message, verdict: Verdict) -> Flag:
    line = _judge_line(verdict)
    if verdict.rule == JudgeVerdict.Rule.LEAK:
        kind, severity, category = Flag.Kind.ANSWER_LEAK, Flag.Severity.MEDIUM, "answer"
        detail = f"The LLM judge found that the tutor gave the answer away. {line}"
    else:
        kind, severity, category = Flag.Kind.PEDAGOGY, Flag.Severity.LOW, "style"
        detail = f"The LLM judge found that the reply breaks the pedagogy rules. {line}"
    flag, created = raise_flag(
        message.session, kind, severity, message=message, category=category, detail=detail
    )
    if not created and line not in flag.detail:  # raised by the rule judge or a teacher
        flag.detail = f"{flag.detail}\n{line}".strip()
        flag.save(update_fields=["detail"])
    return flag


def judge_verdict_payload(verdict: JudgeVerdict) -> dict:
    return {
        "message_id": verdict.message_id,
        "rule": verdict.rule,
        "rule_display": verdict.get_rule_display(),
        "passed": verdict.passed,
        "reasons": verdict.reasons,
        "judge_model": verdict.judge_model,
        "created_at": verdict.created_at.isoformat(),
    }


def visible_judge_verdicts(user) -> QuerySet[JudgeVerdict]:
    """Verdicts on the sessions ``user`` may review (none for students)."""
    if not can_review(user):
        return JudgeVerdict.objects.none()
    if user.is_platform_admin:
        return JudgeVerdict.objects.all()
    return JudgeVerdict.objects.filter(message__session__in=reviewable_sessions(user))


def judge_teacher_agreement(messages: Iterable[Message] | QuerySet[Message] | None = None) -> dict:
    """How far the LLM judge's ``leak`` verdicts agree with teachers' "gave the answer away"
    ratings, over the tutor turns that have both (all of them, or those in ``messages``).

    A turn counts as given away by the teachers when any rating of it says so
    (``TurnRating.gave_away_answer``); a rating without that mark says it was not. Returns
    ``{"kappa": Metric (Cohen's kappa, with "agreement"), "n", "judge_leak_rate",
    "teacher_leak_rate"}``; with no such turn, kappa's value is None."""
    from training.evaluation.metrics import kappa_metric  # numpy: only when asked

    verdicts = JudgeVerdict.objects.filter(rule=JudgeVerdict.Rule.LEAK)
    if messages is not None:
        ids = messages.values("pk") if isinstance(messages, QuerySet) else [m.pk for m in messages]
        verdicts = verdicts.filter(message__in=ids)
    judged = dict(verdicts.values_list("message_id", "passed"))
    teacher: dict[int, bool] = {}
    ratings = TurnRating.objects.filter(message_id__in=list(judged)).values_list(
        "message_id", "gave_away_answer"
    )
    for message_id, gave_away in ratings:
        teacher[message_id] = teacher.get(message_id, False) or gave_away
    both = sorted(teacher)
    judge_leaks = [not judged[m] for m in both]
    teacher_leaks = [teacher[m] for m in both]
    n = len(both)
    return {
        "kappa": kappa_metric(judge_leaks, teacher_leaks),
        "n": n,
        "judge_leak_rate": sum(judge_leaks) / n if n else None,
        "teacher_leak_rate": sum(teacher_leaks) / n if n else None,
    }
