"""Turn domain errors raised by services into clear HTTP answers."""

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import ProtectedError
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler


def exception_handler(exc, context):
    if isinstance(exc, DjangoValidationError):
        detail = exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        return Response(detail, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, ProtectedError):
        kinds = sorted({str(obj._meta.verbose_name_plural) for obj in exc.protected_objects})
        return Response({"detail": f"Still referenced by {', '.join(kinds)}: delete or reassign those first."},
                        status=status.HTTP_409_CONFLICT)
    return drf_exception_handler(exc, context)
