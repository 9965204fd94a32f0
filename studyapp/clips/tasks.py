from celery import shared_task

from . import services


@shared_task(name="clips.extract_frames", bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=0)
def extract_clip_frames(self, clip_id: int) -> bool:
    """Extract a clip's frames; progress and errors are written on the clip row (a second delivery is dropped)."""
    return services.clip_extract_frames(clip_id=clip_id)
