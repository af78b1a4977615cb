"""Review pages and JSON endpoints for teachers (their classes' sessions) and admins (all).

Students get 403 everywhere here; a teacher asking for a session, message or flag outside
their classes gets 404, so ids of other classes are not discoverable.
"""

from __future__ import annotations

import json

from django.core.paginator import Paginator
from django.db import models
from django.db.models import Count, Prefetch, Q
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from tutor.accounts.decorators import role_required
from tutor.accounts.models import Role
from tutor.dialogues.models import Message

from . import services
from .models import Flag, TeacherMove, TurnRating

REVIEWERS = (Role.TEACHER, Role.ADMIN)
SCORES = [1, 2, 3, 4, 5]
RUBRIC = [
    ("helpful", "Helpful"),
    ("no_answer_reveal", "Does not reveal the answer"),
    ("correct", "Correct"),
    ("encourages_thinking", "Encourages the student to think"),
]


class FlagFilter(models.TextChoices):
    """The flag list's status filter: a flag is open until resolved (``resolved_at``)."""

    OPEN = "open", "Open"
    RESOLVED = "resolved", "Resolved"
    ALL = "all", "All"


def _session_for(request: HttpRequest, session_id: int):
    return get_object_or_404(
        services.reviewable_sessions(request.user).select_related(
            "student", "problem", "classroom", "assignment"
        ),
        pk=session_id,
    )


def _tutor_message_for(request: HttpRequest, message_id: int) -> Message:
    return get_object_or_404(
        Message.objects.select_related("session__problem").filter(
            role=Message.Role.TUTOR,
            session__in=services.reviewable_sessions(request.user),
        ),
        pk=message_id,
    )


@require_GET
@role_required(*REVIEWERS)
def session_list(request: HttpRequest) -> HttpResponse:
    sessions = (
        services.reviewable_sessions(request.user)
        .select_related("student", "problem", "classroom")
        .annotate(open_flags=Count("flags", filter=Q(flags__resolved_at__isnull=True)))
        .order_by("-updated_at")
    )
    page = Paginator(sessions, 50).get_page(request.GET.get("page"))
    return render(request, "reviews/session_list.html", {"page": page})


@require_GET
@role_required(*REVIEWERS)
def review_session(request: HttpRequest, session_id: int) -> HttpResponse:
    session = _session_for(request, session_id)
    my_ratings = TurnRating.objects.filter(rater=request.user)
    messages = list(
        session.messages.prefetch_related(
            Prefetch("ratings", queryset=my_ratings, to_attr="my_ratings"),
            "flags",
            "blocked_replies",
            "judge_verdicts",
            # The session's student's thumbs up or down, shown beside the teacher's rating.
            "student_ratings",
        )
    )
    for message in messages:
        message.my_rating = rating = message.my_ratings[0] if message.my_ratings else None
        message.rubric = [
            (field, label, getattr(rating, field) if rating else None) for field, label in RUBRIC
        ]
    flags = session.flags.select_related("resolved_by").order_by(
        services.SEVERITY_ORDER, "-created_at"
    )
    return render(
        request,
        "reviews/session.html",
        {
            "session": session,
            "messages_list": messages,
            "attempts": session.attempts.all(),
            "flags": flags,
            "scores": SCORES,
            "moves": TeacherMove.choices,
        },
    )


@require_GET
@role_required(*REVIEWERS)
def session_ratings(request: HttpRequest, session_id: int) -> JsonResponse:
    session = _session_for(request, session_id)
    ratings = TurnRating.objects.filter(message__session=session).order_by("message_id", "id")
    verdicts = services.visible_judge_verdicts(request.user).filter(message__session=session)
    return JsonResponse(
        {
            "session": session.pk,
            "outcome": session.outcome,
            "ratings": [services.rating_payload(r) for r in ratings],
            "judge_verdicts": [
                services.judge_verdict_payload(v) for v in verdicts.order_by("message_id", "rule")
            ],
        }
    )


def _json_body(request: HttpRequest) -> dict:
    try:
        data = json.loads(request.body or b"{}")
    except (ValueError, UnicodeDecodeError):
        raise services.RatingError("The body must be JSON.") from None
    if not isinstance(data, dict):
        raise services.RatingError("Send a JSON object.")
    return data


@require_POST
@role_required(*REVIEWERS)
def rate_message(request: HttpRequest, message_id: int) -> JsonResponse:
    message = _tutor_message_for(request, message_id)
    try:
        fields = services.clean_rating(_json_body(request))
    except services.RatingError as exc:
        return JsonResponse({"error": str(exc)}, status=400)
    rating = services.save_rating(message, request.user, fields)
    return JsonResponse({"rating": services.rating_payload(rating)})


@require_POST
@role_required(*REVIEWERS)
def gave_away_answer(request: HttpRequest, message_id: int) -> JsonResponse:
    message = _tutor_message_for(request, message_id)
    rating, flag = services.mark_gave_away_answer(message, request.user)
    flag = Flag.objects.select_related("session__student", "session__problem").get(pk=flag.pk)
    return JsonResponse(
        {"rating": services.rating_payload(rating), "flag": services.flag_payload(flag)}
    )


@require_GET
@role_required(*REVIEWERS)
def flag_list(request: HttpRequest) -> HttpResponse:
    status = request.GET.get("status", FlagFilter.OPEN)
    kind = request.GET.get("kind", "")
    severity = request.GET.get("severity", "")
    flags = services.visible_flags(request.user).select_related(
        "session__student", "session__problem", "session__classroom", "resolved_by"
    )
    if status == FlagFilter.OPEN:
        flags = flags.filter(resolved_at__isnull=True)
    elif status == FlagFilter.RESOLVED:
        flags = flags.filter(resolved_at__isnull=False)
    else:
        status = FlagFilter.ALL
    if kind in Flag.Kind.values:
        flags = flags.filter(kind=kind)
    else:
        kind = ""
    if severity in Flag.Severity.values:
        flags = flags.filter(severity=severity)
    else:
        severity = ""
    flags = flags.order_by(services.SEVERITY_ORDER, "-created_at", "-id")
    page = Paginator(flags, 50).get_page(request.GET.get("page"))
    return render(
        request,
        "reviews/flags.html",
        {
            "page": page,
            "status": status,
            "kind": kind,
            "severity": severity,
            "kinds": Flag.Kind.choices,
            "severities": Flag.Severity.choices,
            "query": request.GET.urlencode(),
        },
    )


@require_POST
@role_required(*REVIEWERS)
def resolve_flag(request: HttpRequest, flag_id: int) -> HttpResponse:
    flag = get_object_or_404(services.visible_flags(request.user), pk=flag_id)
    services.resolve_flag(flag, request.user)
    if request.headers.get("accept", "").startswith("application/json"):
        return JsonResponse({"id": flag.pk, "resolved_at": flag.resolved_at.isoformat()})
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        target = "reviews:flags"
    return redirect(target)
