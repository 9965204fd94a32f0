import pytest

from studyapp.clips import services
from studyapp.clips.models import Clip, Frame
from studyapp.protocol.models import StudySettings
from tests.conftest import wait_for
from tests.factories import make_hand, phantom_file, upload_file


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_upload_queues_extraction_that_a_real_worker_runs_idempotently(celery_worker_process, tmp_path, settings):
    settings.MEDIA_ROOT = celery_worker_process.media_root  # the worker writes frames where the test reads
    StudySettings.objects.update_or_create(id=1, defaults={"frames_per_clip": 8})
    path, _ = phantom_file(tmp_path, "clip.avi", n_frames=30)
    clip = services.clip_upload(hand=make_hand(), upload=upload_file(path), pixel_spacing_mm=0.25)

    def finished():
        row = Clip.objects.get(pk=clip.pk)
        return row if row.extraction_status in ("done", "failed") else None

    row = wait_for(finished, timeout=120, worker=celery_worker_process)
    assert row.extraction_status == "done", row.extraction_error
    indices = list(Frame.objects.filter(clip=clip).values_list("index", flat=True))
    assert indices == [0, 4, 8, 12, 17, 21, 25, 29]
    gaps = {b - a for a, b in zip(indices, indices[1:])}
    assert max(gaps) - min(gaps) <= 1
    first_ids = list(Frame.objects.filter(clip=clip).values_list("id", "image"))

    # A second run, on the worker again, leaves the same frames (same rows, same files), not doubles.
    from studyapp.clips.tasks import extract_clip_frames
    Clip.objects.filter(pk=clip.pk).update(extraction_status="queued")
    extract_clip_frames.delay(clip.pk)
    wait_for(finished, timeout=120, worker=celery_worker_process)
    assert list(Frame.objects.filter(clip=clip).values_list("id", "image")) == first_ids
    files = list((celery_worker_process.media_root / "frames").rglob("*.png"))
    assert len([f for f in files if clip.sha256 in str(f)]) == 8
