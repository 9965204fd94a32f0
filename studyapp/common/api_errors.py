"""Turn domain errors raised by services into clear HTTP answers."""

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import ProtectedError
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from .concurrency import StaleVersion


def exception_handler(exc, context):
    if isinstance(exc, DjangoValidationError):
        detail = exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        return Response(detail, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, ProtectedError):
        kinds = sorted({str(obj._meta.verbose_name_plural) for obj in exc.protected_objects})
        return Response({"detail": f"Still referenced by {', '.join(kinds)}: delete or reassign those first."},
                        status=status.HTTP_409_CONFLICT)
    if isinstance(exc, StaleVersion):
        return stale_version_response(exc, context["view"])
    return drf_exception_handler(exc, context)


def stale_version_response(exc: StaleVersion, view) -> Response:
    """409 with the record as it is now and what changed, limited to the fields the caller may see."""
    current = view.get_serializer(exc.current).data
    changed = [{"field": c.field, "before": c.before, "after": current[c.field]}
               for c in exc.changes if c.field in current]
    return Response({"detail": str(exc) if len(changed) == len(exc.changes) else _without_values(exc),
                     "code": exc.code, "current": current, "changed": changed},
                    status=status.HTTP_409_CONFLICT)


def _without_values(exc: StaleVersion) -> str:
    return (f"This {exc.current._meta.verbose_name} was changed since you loaded it (version {exc.expected}, now "
            f"{exc.current.version}). Reload it, then save your change again.")
