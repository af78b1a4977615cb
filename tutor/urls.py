from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.http import HttpResponse
from django.urls import include, path

from tutor.accounts.views import LoginView
from tutor.dialogues.views import home


def healthz(request):
    return HttpResponse("ok", content_type="text/plain")


urlpatterns = [
    path("", home, name="home"),
    path("accounts/login/", LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/", include("tutor.accounts.urls")),
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    path("", include("tutor.dialogues.urls")),
    path("classes/", include("tutor.classes.urls")),
    path("problems/", include("tutor.problems.urls")),
    path("reviews/", include("tutor.reviews.urls")),
    path("dashboards/", include("tutor.dashboards.urls")),
    path("retraining/", include("tutor.retraining.urls")),
]

# Single sign-on (django-allauth, OpenID Connect): its pages exist only while it is turned on.
if settings.TUTOR_SSO:
    urlpatterns.append(path("sso/", include("allauth.urls")))
