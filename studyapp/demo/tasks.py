from celery import shared_task

from .jobs import demo_job_run


@shared_task(name="demo.seed", bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=0)
def seed_demo_study(self, job_id: int) -> str:
    """Seed the demo study, writing progress on the job row; after a dead worker it resumes where it stopped."""
    return demo_job_run(job_id=job_id, worker=self.request.hostname or "")
