"""What background work rows share: asking a queued or running job to stop."""

from django.core.exceptions import ValidationError
from django.utils import timezone


def cancel_requested(model, pk: int, *, stops: str):
    """Lock the row and ask it to stop: a queued one is cancelled now, a running one when its worker next looks.

    `model` has Status QUEUED/CANCELLED, `is_finished`, `cancel_requested` and `finished_at`; `stops` says
    when a running one stops ("within a few seconds"). Call inside a transaction.
    """
    row = model.objects.select_for_update().get(pk=pk)
    if row.is_finished:
        raise ValidationError({"status": ValidationError(
            f"The {model._meta.verbose_name} is already {row.get_status_display().lower()}.", code="finished")})
    if row.cancel_requested:
        raise ValidationError({"status": ValidationError(
            f"Cancelling is already requested; the {model._meta.verbose_name} stops {stops}.", code="cancelling")})
    row.cancel_requested = True
    if row.status == model.Status.QUEUED:
        row.status, row.finished_at = model.Status.CANCELLED, timezone.now()
    row.save()
    return row
