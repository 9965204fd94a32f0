"""What background work rows share: asking a job to stop, and queueing again the ones a dead worker held."""

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


def requeue_running(model, queue, **lost) -> list[int]:
    """Running rows matching `lost` (a dead worker's name, or a stale heartbeat): back to queued, then `queue(id)`.

    Each row is taken back with a conditional update, so a row some worker claimed meanwhile stays with it.
    """
    running = model.objects.filter(status=model.Status.RUNNING, **lost)
    requeued = []
    for pk in list(running.values_list("pk", flat=True)):
        if running.filter(pk=pk).update(status=model.Status.QUEUED, task_id=""):
            queue(pk)
            requeued.append(pk)
    return requeued
