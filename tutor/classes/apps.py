from django.apps import AppConfig


class ClassesConfig(AppConfig):
    name = "tutor.classes"
    label = "classes"
    verbose_name = "Classes and assignments"
