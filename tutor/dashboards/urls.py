from django.urls import path

from . import views

app_name = "dashboards"

urlpatterns = [
    path("classes/<int:classroom_id>/", views.class_dashboard, name="class"),
    path("classes/<int:classroom_id>/summary.json", views.class_summary, name="class_summary"),
    path("classes/<int:classroom_id>/mastery.json", views.class_mastery, name="class_mastery"),
]
