"""Post-turn checks, run by a Celery worker so they never slow the chat down."""

from celery import shared_task

from . import services
from .models import Message


@shared_task(acks_late=True, ignore_result=False)
def check_tutor_turn(message_id: int) -> bool | None:
    message = Message.objects.select_related("session__problem").filter(pk=message_id).first()
    if message is None or message.role != Message.Role.TUTOR:
        return None
    return services.check_turn(message)
