from celery import shared_task
from django.utils import timezone

from studyapp.ops.models import BackgroundJob

from .reports import report_generate


@shared_task(name="dashboards.report", acks_late=True, reject_on_worker_lost=True, max_retries=0)
def generate_report(job_id: int) -> dict:
    """Build an experiment's study report, writing progress on the job row. Safe to run again: same files."""
    job = BackgroundJob.objects.get(pk=job_id)
    BackgroundJob.objects.filter(pk=job_id).update(status=BackgroundJob.Status.RUNNING, error="")

    def progress(done: int, total: int, message: str) -> None:
        BackgroundJob.objects.filter(pk=job_id).update(done=done, total=total, message=message)

    try:
        names = report_generate(experiment_id=job.params["experiment"], progress=progress)
    except Exception as error:
        BackgroundJob.objects.filter(pk=job_id).update(status=BackgroundJob.Status.FAILED, finished_at=timezone.now(),
                                                       error=f"{type(error).__name__}: {error}")
        raise
    BackgroundJob.objects.filter(pk=job_id).update(status=BackgroundJob.Status.DONE, finished_at=timezone.now(),
                                                   message="Report ready.")
    return names
