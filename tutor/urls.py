from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.http import HttpResponse
from django.urls import include, path

from tutor.dialogues.views import home


def healthz(request):
    return HttpResponse("ok", content_type="text/plain")


urlpatterns = [
    path("", home, name="home"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    path("", include("tutor.dialogues.urls")),
    path("classes/", include("tutor.classes.urls")),
    path("reviews/", include("tutor.reviews.urls")),
    path("dashboards/", include("tutor.dashboards.urls")),
    path("retraining/", include("tutor.retraining.urls")),
]
