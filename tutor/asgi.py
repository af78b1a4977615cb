"""ASGI entry point: HTTP through Django, WebSockets through Channels."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tutor.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from pedagogy import bounded  # noqa: E402
from tutor.dialogues.flood_gate import FloodGate  # noqa: E402
from tutor.dialogues.routing import websocket_urlpatterns  # noqa: E402
from tutor.reviews.routing import websocket_urlpatterns as review_websocket_urlpatterns  # noqa: E402

# The processes that check answers and tutor turns start with the server, not on a student's
# first answer.
bounded.start()

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        # A browser paused for flooding is refused before its session is read (flood_gate.py).
        "websocket": AllowedHostsOriginValidator(
            FloodGate(
                AuthMiddlewareStack(URLRouter(websocket_urlpatterns + review_websocket_urlpatterns))
            )
        ),
    }
)
