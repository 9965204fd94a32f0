from celery import shared_task

from . import services


@shared_task(name="reports.generate", acks_late=True, reject_on_worker_lost=True, max_retries=0)
def generate_report(report_id: int) -> str:
    """Generate a study report on the default queue; progress and failure go on its StudyReport row."""
    return services.report_run(report_id=report_id)
