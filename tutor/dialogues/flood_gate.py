"""The chat's pause for flooding, enforced before a socket costs the database anything.

When the consumer closes a flooding socket (close code 4429) it holds both the user and the
browser's session cookie for ``TUTOR_FLOOD_COOLDOWN_SECONDS``. A client that ignores the pause
and reconnects in a loop would otherwise cost a session and a user lookup in PostgreSQL, an
accepted socket and an error frame per try; :class:`FloodGate` sits in front of Channels'
authentication and refuses such a handshake after one cache lookup. The user hold, checked in
``connect``, still covers the same student's other browsers.
"""

from __future__ import annotations

import hashlib
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.http.cookie import parse_cookie

from tutor import limits

CLOSE_FLOODING = 4429
BROWSER_HOLD = "flood-browser"

held = sync_to_async(limits.held, thread_sensitive=False)


def browser_key(scope: dict[str, Any]) -> str:
    """A digest of the session cookie the socket was opened with ("" without one): the hold's
    key, so that cache keys never carry a usable session id."""
    for name, value in scope.get("headers", ()):
        if name == b"cookie":
            cookie = parse_cookie(value.decode("latin-1")).get(settings.SESSION_COOKIE_NAME, "")
            if cookie:
                return hashlib.sha256(cookie.encode()).hexdigest()[:32]
    return ""


def hold_browser(scope: dict[str, Any], seconds: float) -> None:
    key = browser_key(scope)
    if key:
        limits.hold(BROWSER_HOLD, key, seconds)


class FloodGate:
    """ASGI middleware: refuses the WebSocket handshake (HTTP 403) of a browser on pause."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        key = browser_key(scope) if scope["type"] == "websocket" else ""
        if key and await held(BROWSER_HOLD, key):
            message = await receive()
            if message["type"] == "websocket.connect":
                await send({"type": "websocket.close", "code": CLOSE_FLOODING})
            return
        await self.app(scope, receive, send)
