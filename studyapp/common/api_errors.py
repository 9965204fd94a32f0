"""Turn domain errors raised by services into clear HTTP answers."""

import logging

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError
from django.db.models import ProtectedError
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework.views import set_rollback

from .concurrency import StaleVersion

logger = logging.getLogger(__name__)

CONFLICT_MESSAGE = ("This conflicts with a record saved at the same moment by another request. "
                    "Reload, check the current data and try again.")


def _constraint_name(exc: IntegrityError) -> str | None:
    return getattr(getattr(exc.__cause__, "diag", None), "constraint_name", None)


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
    if isinstance(exc, IntegrityError):
        # A safety net: services turn the races they know into specific answers; one they miss is still a
        # conflict the client can retry, never a 500. Logged, so the missed path gets its own handling.
        constraint = _constraint_name(exc)
        logger.warning("IntegrityError reached the API (constraint %s) in %s", constraint,
                       type(context.get("view")).__name__, exc_info=exc)
        set_rollback()
        return Response({"detail": CONFLICT_MESSAGE, "code": "conflict", "constraint": constraint},
                        status=status.HTTP_409_CONFLICT)
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
