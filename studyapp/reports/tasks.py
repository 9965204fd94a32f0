from celery import shared_task

from . import services


@shared_task(name="reports.generate", acks_late=False, max_retries=0)
def generate_report(report_id: int) -> str:
    """Generate a study report on the default queue; progress and failure go on its StudyReport row."""
    try:
        report = services.report_generate(report_id=report_id)
    except Exception as error:
        services.report_fail(report_id=report_id, error=error)
        raise
    return report.bundle_sha256
