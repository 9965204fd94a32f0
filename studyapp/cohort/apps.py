from django.apps import AppConfig


class CohortConfig(AppConfig):
    name = "studyapp.cohort"
