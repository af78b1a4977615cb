"""The class dashboard: a page that draws its charts from JSON endpoints.

A teacher sees only their own classes (another teacher's class is "not found", so ids are not
discoverable); platform admins see every class; students get 403 from every view.
"""

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache

from tutor.accounts.decorators import role_required
from tutor.accounts.models import Role
from tutor.classes.services import get_classroom_for

from .presentation import mastery_payload, summary_payload
from .queries import ClassQueries


@never_cache
@role_required(Role.TEACHER, Role.ADMIN)
def class_dashboard(request: HttpRequest, classroom_id: int) -> HttpResponse:
    classroom = get_classroom_for(request.user, classroom_id)
    return render(request, "dashboards/class_dashboard.html", {"classroom": classroom})


@never_cache
@role_required(Role.TEACHER, Role.ADMIN)
def class_summary(request: HttpRequest, classroom_id: int) -> JsonResponse:
    classroom = get_classroom_for(request.user, classroom_id)
    return JsonResponse(
        summary_payload(ClassQueries(classroom)), json_dumps_params={"ensure_ascii": False}
    )


@never_cache
@role_required(Role.TEACHER, Role.ADMIN)
def class_mastery(request: HttpRequest, classroom_id: int) -> JsonResponse:
    classroom = get_classroom_for(request.user, classroom_id)
    return JsonResponse(
        mastery_payload(ClassQueries(classroom)), json_dumps_params={"ensure_ascii": False}
    )
