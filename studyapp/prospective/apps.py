from django.apps import AppConfig


class ProspectiveConfig(AppConfig):
    name = "studyapp.prospective"
    verbose_name = "Prospective prediction"
