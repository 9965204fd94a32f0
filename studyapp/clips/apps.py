from django.apps import AppConfig


class ClipsConfig(AppConfig):
    name = "studyapp.clips"
