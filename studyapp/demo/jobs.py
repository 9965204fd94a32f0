"""The demo seeding as a background job: queue it, restart it when it failed or its worker died, run it.

Light on imports (no phantom, no OpenCV): the web process queues from here; the worker's run imports the
seeding itself on use.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from studyapp.common.jobs import JobKind, LeaseLost, lease_claim, lease_expired, lease_kept, queue_on_commit
from studyapp.ops.models import BackgroundJob

KIND = "seed_demo"


def _queue(job_id: int) -> None:
    from .tasks import seed_demo_study

    seed_demo_study.delay(job_id)


SEED_DEMO = JobKind(BackgroundJob, queue=lambda job_id: _queue(job_id), only={"kind": KIND})


def demo_job_restartable(job: BackgroundJob | None) -> bool:
    """The PI may start it again: it failed, or it runs on a worker that stopped renewing its lease."""
    return job is not None and (job.status == BackgroundJob.Status.FAILED or lease_expired(SEED_DEMO, job))


def demo_job_queue(*, hands: int = 100, seed: int = 2022, awaiting: int | None = None,
                   prospective: int | None = None) -> BackgroundJob:
    """Queue the demo study for the worker (after commit); the job row carries its progress for the cohort page."""
    from .services import DEMO_AWAITING, DEMO_PROSPECTIVE  # the constants only; services loads on the worker

    awaiting = DEMO_AWAITING if awaiting is None else awaiting
    prospective = DEMO_PROSPECTIVE if prospective is None else prospective
    job = BackgroundJob.objects.create(
        kind=KIND, params={"hands": hands, "seed": seed, "awaiting": awaiting, "prospective": prospective},
        total=hands + awaiting + prospective)
    queue_on_commit(SEED_DEMO, job.pk)
    return job


@transaction.atomic
def demo_job_start() -> BackgroundJob:
    """Queue the demo seeding; a last job that failed or lost its worker is queued again and resumes."""
    job = BackgroundJob.objects.select_for_update().filter(kind=KIND).first()
    if job is None:
        return demo_job_queue()
    if job.status == BackgroundJob.Status.DONE:
        raise ValidationError("The demo study is already seeded.", code="demo_seeded")
    restartable = Q(status=BackgroundJob.Status.FAILED) | SEED_DEMO.expired(timezone.now())
    if not BackgroundJob.objects.filter(restartable, pk=job.pk).update(
            status=BackgroundJob.Status.QUEUED, error="", lease_token="", lease_expires_at=None, finished_at=None):
        raise ValidationError("The demo study is already being seeded.", code="demo_running")
    queue_on_commit(SEED_DEMO, job.pk)
    job.refresh_from_db()
    return job


def demo_job_run(*, job_id: int, worker: str) -> str:
    """Seed the demo study under the job's lease; a restarted job resumes from its last checkpoint."""
    from .services import demo_seed

    lease = lease_claim(SEED_DEMO, job_id, worker=worker, error="")
    if lease is None:
        return "not claimed"
    job = BackgroundJob.objects.get(pk=job_id)
    hands, awaiting = job.params.get("hands", 100), job.params.get("awaiting", 0)
    prospective = job.params.get("prospective", 0)
    lease.update(total=hands + awaiting + prospective)

    def progress(done: int, total: int) -> None:
        lease.update(done=done, total=total, message=f"{done} of {total} hands")

    def checkpoint(state: dict) -> None:
        # Inside the participant's transaction: if another worker took the job over, nothing of it lands.
        if not lease.update(checkpoint=state):
            raise LeaseLost(f"Demo job {job_id} was taken over by another worker.")

    with lease_kept(lease):
        try:
            created = demo_seed(n_hands=hands, seed=job.params.get("seed", 2022), awaiting_annotation=awaiting,
                                prospective=prospective, explain_sample=True, progress=progress,
                                resume_from=job.checkpoint, checkpoint=checkpoint)
        except LeaseLost:
            return "taken over"
        except Exception as error:
            lease.finish(BackgroundJob.Status.FAILED, error=str(error), finished_at=timezone.now())
            raise
        lease.finish(BackgroundJob.Status.DONE, finished_at=timezone.now(), done=created,
                     message=f"Seeded {created} hands.")
    return "done"
