from django.apps import AppConfig


class ExplanationsConfig(AppConfig):
    name = "studyapp.explanations"
