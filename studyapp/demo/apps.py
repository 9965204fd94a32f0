from django.apps import AppConfig


class DemoConfig(AppConfig):
    name = "studyapp.demo"
    verbose_name = "demo study"
