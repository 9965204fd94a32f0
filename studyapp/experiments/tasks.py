from celery import shared_task
from celery.signals import worker_ready

from . import services


@shared_task(name="experiments.train_model", bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=0)
def train_model(self, run_id: int) -> str:
    """Train one model of an experiment (routed to the training queue; resumes from its checkpoint).

    A second delivery while the run's worker lives is dropped by the claim (common.jobs).
    """
    from . import training  # worker-only: torch is imported by the process that trains, not by the web

    return training.run_train(run_id=run_id, task_id=self.request.id or "", worker=self.request.hostname or "")


@worker_ready.connect
def _resume_orphaned_runs(sender, **kwargs):
    """Runs this worker held under the same node name when it died are queued again at once.

    Done here, in a starting worker, so they go to the training queue this installation is configured with;
    runs of workers that never come back return when their lease expires (ops.heartbeat sweeps them).
    """
    services.runs_requeue_orphans(worker=sender.hostname)


@shared_task(name="experiments.predict_clip", acks_late=True, reject_on_worker_lost=True, max_retries=0,
             ignore_result=True)
def predict_clip(job_id: int) -> None:
    """A registered model's prediction of a clip (default queue); progress and result on the BackgroundJob row."""
    from . import prediction  # worker-only: torch loads in the worker, not with the web's URL configuration

    prediction.prediction_run(job_id=job_id)
