from django.urls import path

from .consumers import TeacherConsumer

websocket_urlpatterns = [
    path("ws/teacher/", TeacherConsumer.as_asgi()),
]
