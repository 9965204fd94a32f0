from celery import shared_task
from celery.signals import worker_ready

from . import services


@shared_task(name="experiments.train_model", bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=0)
def train_model(self, run_id: int) -> str:
    """Train one model of an experiment (routed to the training queue; resumes from its checkpoint)."""
    return services.run_train(run_id=run_id, task_id=self.request.id or "", worker=self.request.hostname or "")


@worker_ready.connect
def _resume_orphaned_runs(sender, **kwargs):
    """Runs this worker (same node name) held when it died are queued again and resume from their checkpoint.

    Done here, in the restarted worker, so they go to the training queue this worker is configured with.
    """
    services.runs_requeue_orphans(worker=sender.hostname)
