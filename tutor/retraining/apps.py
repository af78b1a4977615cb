from django.apps import AppConfig


class RetrainingConfig(AppConfig):
    name = "tutor.retraining"
    label = "retraining"
    verbose_name = "Retraining and model versions"
