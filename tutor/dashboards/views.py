"""The class dashboard: a page that draws its charts from JSON endpoints.

A teacher sees only their own classes (another teacher's class is "not found", so ids are not
discoverable); platform admins see every class; students get 403 from every view.
"""

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.cache import never_cache

from tutor.accounts.decorators import role_required
from tutor.accounts.models import Role
from tutor.classes.models import Classroom

from .analytics import ClassAnalytics


def visible_classroom(user, classroom_id: int) -> Classroom:
    classes = Classroom.objects.all()
    if not user.is_platform_admin:
        classes = classes.filter(teacher=user)
    return get_object_or_404(classes, pk=classroom_id)


@never_cache
@role_required(Role.TEACHER, Role.ADMIN)
def class_dashboard(request: HttpRequest, classroom_id: int) -> HttpResponse:
    classroom = visible_classroom(request.user, classroom_id)
    return render(request, "dashboards/class_dashboard.html", {"classroom": classroom})


@never_cache
@role_required(Role.TEACHER, Role.ADMIN)
def class_summary(request: HttpRequest, classroom_id: int) -> JsonResponse:
    classroom = visible_classroom(request.user, classroom_id)
    return JsonResponse(
        ClassAnalytics(classroom).summary(), json_dumps_params={"ensure_ascii": False}
    )


@never_cache
@role_required(Role.TEACHER, Role.ADMIN)
def class_mastery(request: HttpRequest, classroom_id: int) -> JsonResponse:
    classroom = visible_classroom(request.user, classroom_id)
    return JsonResponse(
        ClassAnalytics(classroom).mastery_over_time(), json_dumps_params={"ensure_ascii": False}
    )
