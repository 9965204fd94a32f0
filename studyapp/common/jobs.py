"""What background work rows share: one claim/heartbeat/lease mechanism, asking a job to stop, queueing again.

Every job row (a clip's extraction, a training run, an explanation job, a background job, a report) moves
QUEUED -> RUNNING -> an end state, and a worker holds a RUNNING row through a lease:

- `lease_claim` takes the row only when it is QUEUED or its lease expired, with one conditional UPDATE, and
  writes a fresh token. A second delivery of the same message while the holder lives finds a live lease and
  is dropped; a redelivery after the holder died takes the job over (training resumes from its checkpoint).
- `lease_kept` renews the lease from a thread while the job works, so a long step without progress calls
  (loading crops, bootstrap CIs) never looks dead. A holder whose renewal finds another token lost the job.
- `Lease.finish` writes the end state only while the token is still the holder's.
- `requeue_expired` (run by every worker's heartbeat) queues again the RUNNING rows whose lease expired.

CTS_JOB_LEASE_S must stay well below the broker's visibility timeout (see README, "Background work").
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import close_old_connections, connection
from django.db.models import Q
from django.utils import timezone

logger = logging.getLogger(__name__)


class LeaseLost(Exception):
    """Another worker took the job over after this one's lease expired: stop without writing."""


@dataclass(frozen=True)
class JobKind:
    """Where a kind of job keeps its state: the model, its status field and enum, and how to queue one."""

    model: type
    queue: Callable[[int], None]
    states: type | None = None  # the TextChoices with QUEUED and RUNNING; model.Status by default
    status: str = "status"
    token: str = "lease_token"
    expires: str = "lease_expires_at"
    error: str = "error"
    finished: str = "finished_at"
    only: dict = field(default_factory=dict)  # e.g. {"kind": "seed_demo"} on a shared table

    @property
    def queued(self) -> str:
        return (self.states or self.model.Status).QUEUED

    @property
    def running(self) -> str:
        return (self.states or self.model.Status).RUNNING

    @property
    def failed(self) -> str:
        return (self.states or self.model.Status).FAILED

    def claimable(self, now) -> Q:
        """Rows a worker may take now: new ones, and running ones whose holder stopped renewing."""
        return Q(**{self.status: self.queued}) | Q(**{self.status: self.running, f"{self.expires}__lt": now}) \
            | Q(**{self.status: self.running, f"{self.expires}__isnull": True})

    def expired(self, now) -> Q:
        return Q(**{self.status: self.running}) & (Q(**{f"{self.expires}__lt": now})
                                                   | Q(**{f"{self.expires}__isnull": True}))


def lease_seconds() -> float:
    return float(settings.CTS_JOB_LEASE_S)


@dataclass
class Lease:
    """A job row this worker holds: renew it, check it, and finish it, each fenced by the claim's token."""

    kind: JobKind
    pk: int
    token: str
    lost: bool = False

    def rows(self):
        """The row while this claim still holds it (an empty queryset once another worker took over)."""
        return self.kind.model.objects.filter(pk=self.pk, **{self.kind.token: self.token,
                                                             self.kind.status: self.kind.running})

    def renew(self) -> bool:
        """Push the expiry one lease ahead; False (and `lost`) if the row is no longer ours."""
        expires = timezone.now() + timedelta(seconds=lease_seconds())
        if not self.rows().update(**{self.kind.expires: expires}):
            self.lost = True
        return not self.lost

    def check(self) -> None:
        if self.lost:
            raise LeaseLost(f"{self.kind.model._meta.verbose_name} {self.pk} was taken over by another worker.")

    def update(self, **fields) -> bool:
        """Write progress on the row if still ours."""
        return bool(self.rows().update(**fields))

    def finish(self, status: str, **fields) -> bool:
        """Write the end state and release the lease; False if another worker holds the job now."""
        return bool(self.rows().update(**{self.kind.status: status, self.kind.expires: None}, **fields))


def lease_claim(kind: JobKind, pk: int, *, where: Q = Q(), **fields) -> Lease | None:
    """Take the job if it is new or its lease expired; None if it is finished or a live worker holds it.

    `where` narrows the claim (e.g. not cancel_requested); `fields` are written with it (worker, started_at).
    """
    now = timezone.now()
    token = uuid.uuid4().hex
    claimed = kind.model.objects.filter(kind.claimable(now), where, pk=pk, **kind.only).update(
        **{kind.status: kind.running, kind.token: token, kind.expires: now + timedelta(seconds=lease_seconds())},
        **fields)
    return Lease(kind, pk, token) if claimed else None


@contextmanager
def lease_kept(lease: Lease) -> Iterator[Lease]:
    """Renew the lease from a thread every quarter lease while the block runs.

    Inside a caller's transaction (the demo seeding a clip) nobody else sees the row until commit, so
    there is nothing to renew.
    """
    if connection.in_atomic_block:
        yield lease
        return
    stop = threading.Event()

    def beat() -> None:
        try:
            while not stop.wait(lease_seconds() / 4):
                try:
                    if not lease.renew():
                        return
                except Exception:  # noqa: BLE001 - a database blip: the next beat tries again
                    logger.warning("Lease of %s %s not renewed", lease.kind.model.__name__, lease.pk, exc_info=True)
                    close_old_connections()
        finally:
            connection.close()  # this thread's own connection

    thread = threading.Thread(target=beat, name=f"lease {lease.kind.model.__name__} {lease.pk}", daemon=True)
    thread.start()
    try:
        yield lease
    finally:
        stop.set()
        thread.join(timeout=30)


def requeue_expired(kind: JobKind) -> list[int]:
    """Running rows whose lease expired (their worker died): back to queued, then queued on the broker."""
    return requeue_running(kind, kind.expired(timezone.now()))


def requeue_running(kind: JobKind, lost: Q) -> list[int]:
    """Running rows matching `lost`: back to queued, then `kind.queue(id)`.

    Each row is taken back with a conditional update, so a row some worker claimed meanwhile stays with it;
    a message of the old delivery that arrives later finds the job running or done and is dropped.
    """
    running = kind.model.objects.filter(lost, **{kind.status: kind.running}, **kind.only)
    requeued = []
    for pk in list(running.values_list("pk", flat=True)):
        if running.filter(pk=pk).update(**{kind.status: kind.queued, kind.token: "", kind.expires: None}):
            kind.queue(pk)
            requeued.append(pk)
    return requeued


QUEUE_DOWN = ("The task queue could not be reached, so nothing was queued: {error}. Start it again (Redis) and "
              "retry.")


def queue_or_fail(kind: JobKind, pk: int) -> None:
    """Send the job to the broker; if the broker is down, record the job failed with why, never stuck queued.

    Called after commit (`transaction.on_commit`), so a worker never receives a job it cannot see yet.
    """
    try:
        kind.queue(pk)
    except Exception as error:  # noqa: BLE001 - kombu raises OperationalError, redis its own errors
        logger.exception("Queueing %s %s failed", kind.model.__name__, pk)
        kind.model.objects.filter(pk=pk, **{kind.status: kind.queued}).update(**{
            kind.status: kind.failed, kind.error: QUEUE_DOWN.format(error=f"{type(error).__name__}: {error}"),
            kind.finished: timezone.now()})


def queue_on_commit(kind: JobKind, pk: int) -> None:
    from django.db import transaction

    transaction.on_commit(lambda: queue_or_fail(kind, pk))


def lease_expired(kind: JobKind, row) -> bool:
    """True when a running row's worker stopped renewing it: the UI offers to restart it."""
    expires = getattr(row, kind.expires)
    return getattr(row, kind.status) == kind.running and (expires is None or expires < timezone.now())


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
