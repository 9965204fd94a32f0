from celery import shared_task
from django.utils import timezone

from studyapp.ops.models import BackgroundJob

from .services import demo_seed


@shared_task(name="demo.seed", acks_late=False, max_retries=0)
def seed_demo_study(job_id: int) -> int:
    """Seed the demo study, writing progress on the job row. Not redelivered: a half-seeded demo is refused."""
    params = BackgroundJob.objects.get(pk=job_id).params
    hands, awaiting = params.get("hands", 100), params.get("awaiting", 0)
    BackgroundJob.objects.filter(pk=job_id).update(status=BackgroundJob.Status.RUNNING, total=hands + awaiting)

    def progress(done, total):
        BackgroundJob.objects.filter(pk=job_id).update(done=done, total=total, message=f"{done} of {total} hands")

    try:
        created = demo_seed(n_hands=hands, seed=params.get("seed", 2022), awaiting_annotation=awaiting,
                            explain_sample=True, progress=progress)
    except Exception as error:
        BackgroundJob.objects.filter(pk=job_id).update(status=BackgroundJob.Status.FAILED, error=str(error),
                                                       finished_at=timezone.now())
        raise
    BackgroundJob.objects.filter(pk=job_id).update(status=BackgroundJob.Status.DONE, finished_at=timezone.now(),
                                                   message=f"Seeded {created} hands.")
    return created
