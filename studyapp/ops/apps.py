from django.apps import AppConfig


class OpsConfig(AppConfig):
    name = "studyapp.ops"
    verbose_name = "operations"
