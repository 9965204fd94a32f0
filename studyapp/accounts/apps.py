from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _sync_roles(**kwargs):
    from .roles import sync_roles

    sync_roles()


class AccountsConfig(AppConfig):
    name = "studyapp.accounts"

    def ready(self):
        post_migrate.connect(_sync_roles, dispatch_uid="studyapp.accounts.sync_roles")
