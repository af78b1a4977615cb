"""The teacher socket, ``/ws/teacher/``: live notifications of high-severity flags.

A teacher joins the channel-layer group ``teacher-<user id>``; platform admins join ``admins``.
Server -> client frames:

- ``{"type": "hello", "open_flags": N}`` on connect: how many flags the user can see are open.
- ``{"type": "flag", "flag": {...}}`` when a high-severity flag is raised in one of their
  classes (see ``tutor.reviews.services.flag_payload`` for the object).
- ``{"type": "pong"}`` in answer to ``{"type": "ping"}``.

Anonymous users are refused with close code 4401, students with 4403.
"""

from __future__ import annotations

import json

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from . import services

CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403


class TeacherConsumer(AsyncWebsocketConsumer):
    groups_joined: list[str]

    async def connect(self) -> None:
        self.groups_joined = []
        user = self.scope.get("user")
        await self.accept()
        if user is None or not user.is_authenticated:
            await self._refuse("unauthenticated", CLOSE_UNAUTHENTICATED)
            return
        if not services.can_review(user):
            await self._refuse("forbidden", CLOSE_FORBIDDEN)
            return
        groups = []
        if user.is_teacher:
            groups.append(services.teacher_group(user.pk))
        if user.is_platform_admin:
            groups.append(services.ADMINS_GROUP)
        for group in groups:
            await self.channel_layer.group_add(group, self.channel_name)
            self.groups_joined.append(group)
        count = await database_sync_to_async(services.open_flag_count)(user)
        await self.send(text_data=json.dumps({"type": "hello", "open_flags": count}))

    async def _refuse(self, code: str, close_code: int) -> None:
        await self.send(text_data=json.dumps({"type": "error", "code": code}))
        await self.close(code=close_code)

    async def disconnect(self, code: int) -> None:
        for group in self.groups_joined:
            await self.channel_layer.group_discard(group, self.channel_name)
        self.groups_joined = []

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if text_data and len(text_data) < 200 and '"ping"' in text_data:
            await self.send(text_data=json.dumps({"type": "pong"}))

    async def flag_raised(self, event: dict) -> None:
        await self.send(text_data=json.dumps({"type": "flag", "flag": event["flag"]}))
