from django.urls import path

from . import views

app_name = "dialogues"

urlpatterns = [
    path("problems/<int:problem_id>/start/", views.start_session, name="start"),
    path("sessions/<int:session_id>/", views.chat, name="chat"),
]
