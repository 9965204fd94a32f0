from celery import shared_task
from celery.signals import worker_ready


@shared_task(name="explanations.explain_run", bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=0)
def explain_run(self, job_id: int) -> str:
    """Explain one training run's test frames by one method (training queue; resumes where it stopped)."""
    # Imported here: the web process imports this module to queue the task, and must not load torch for it.
    from .explaining import job_run

    return job_run(job_id=job_id, task_id=self.request.id or "", worker=self.request.hostname or "")


@worker_ready.connect
def _resume_orphaned_jobs(sender, **kwargs):
    """Jobs this worker held under the same node name when it died are queued again and resume."""
    from .services import jobs_requeue_orphans

    jobs_requeue_orphans(worker=sender.hostname)
