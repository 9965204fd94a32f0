from celery import shared_task


@shared_task(name="annotations.propagate_rois", acks_late=True, reject_on_worker_lost=True, max_retries=0,
             ignore_result=True)
def propagate_rois(job_id: int) -> None:
    """Propose an annotator's ROI across a clip (default queue); progress and result on the BackgroundJob row."""
    from . import propagation  # worker-only: OpenCV loads in the worker, not with the web's URL configuration

    propagation.propagation_run(job_id=job_id)
