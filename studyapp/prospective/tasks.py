from celery import shared_task


@shared_task(name="prospective.predict_hand", acks_late=True, reject_on_worker_lost=True, max_retries=0,
             ignore_result=True)
def predict_hand(job_id: int) -> None:
    """The frozen model's blinded prediction of one hand (default queue); progress and errors on its job row."""
    from . import prediction  # worker-only: torch loads in the worker

    prediction.prospective_prediction_run(job_id=job_id)
