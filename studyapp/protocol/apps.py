from django.apps import AppConfig


class ProtocolConfig(AppConfig):
    name = "studyapp.protocol"
