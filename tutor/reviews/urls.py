from django.urls import path

from . import views

app_name = "reviews"

urlpatterns = [
    path("", views.session_list, name="sessions"),
    path("sessions/<int:session_id>/", views.review_session, name="session"),
    path("sessions/<int:session_id>/ratings.json", views.session_ratings, name="ratings"),
    path("messages/<int:message_id>/rating/", views.rate_message, name="rate"),
    path("messages/<int:message_id>/gave-away/", views.gave_away_answer, name="gave_away"),
    path("flags/", views.flag_list, name="flags"),
    path("flags/<int:flag_id>/resolve/", views.resolve_flag, name="resolve"),
]
