from django.apps import AppConfig


class ProblemsConfig(AppConfig):
    name = "tutor.problems"
    label = "problems"
    verbose_name = "Problem bank"
