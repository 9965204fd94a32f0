from celery import shared_task

from . import services


@shared_task(name="clips.extract_frames", bind=True, acks_late=True, max_retries=0)
def extract_clip_frames(self, clip_id: int) -> bool:
    """Extract a clip's frames; progress and errors are written on the clip row."""
    return services.clip_extract_frames(clip_id=clip_id, run_id=self.request.id or "")
