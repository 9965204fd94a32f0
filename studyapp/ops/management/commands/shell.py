"""`manage.py shell` with every model imported, the audit-history models too.

django-simple-history names a history model's module after its app ("studyapp.cohort") while the class lives
in the app's models module, so Django's automatic imports missed all 17 of them with a warning on every start.
"""

from django.apps import apps
from django.core.management.commands import shell


class Command(shell.Command):
    def get_auto_imports(self):
        paths = []
        for model in reversed(apps.get_models()):  # as Django orders them: earlier apps win a name clash
            module = model._meta.app_config.models_module
            if module is not None and getattr(module, model.__name__, None) is model:
                paths.append(f"{module.__name__}.{model.__name__}")
            elif model.__module__:
                paths.append(f"{model.__module__}.{model.__name__}")
        return paths
