from django.apps import AppConfig


class DialoguesConfig(AppConfig):
    name = "tutor.dialogues"
    label = "dialogues"
    verbose_name = "Tutoring sessions"
