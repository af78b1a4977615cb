from django.urls import path

from .consumers import TutorConsumer

websocket_urlpatterns = [
    path("ws/sessions/<int:session_id>/", TutorConsumer.as_asgi()),
]
