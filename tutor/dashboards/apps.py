from django.apps import AppConfig


class DashboardsConfig(AppConfig):
    name = "tutor.dashboards"
    label = "dashboards"
    verbose_name = "Dashboards"
