"""The extraction job: settings frozen when queued, reruns without orphan files, a flat number of queries."""

from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from studyapp.clips import services
from studyapp.clips.models import Clip, Frame
from studyapp.protocol.models import StudySettings
from tests.factories import make_clip

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_broker(monkeypatch):
    queued = []
    monkeypatch.setattr(services, "_queue_extraction", queued.append)
    return queued


def set_frames_per_clip(n: int) -> None:
    StudySettings.objects.update_or_create(id=1, defaults={"frames_per_clip": n})


def frame_files(clip: Clip) -> list[str]:
    directory = Path(settings.MEDIA_ROOT) / services.frames_directory(clip)
    return sorted(f"{services.frames_directory(clip)}/{p.name}" for p in directory.iterdir()) if directory.exists() \
        else []


class WorkerDied(BaseException):
    """What a SIGKILL looks like from inside the job: it stops between two frames, nothing is recorded."""


def test_a_rerun_after_a_dead_worker_does_the_work_queued_and_leaves_no_orphan_files(tmp_path):
    set_frames_per_clip(10)
    clip, _ = make_clip(tmp_path, extract=False, n_frames=30)
    assert (clip.extraction_frames_per_clip, clip.extraction_total) == (10, 10)
    Clip.objects.filter(pk=clip.pk).update(extraction_status="running", extraction_task_id="run-1",
                                           extraction_lease_expires_at=timezone.now() + timedelta(minutes=5))

    def die_after_four(done: int, total: int) -> None:
        if done == 4:
            raise WorkerDied
    with pytest.raises(WorkerDied):
        services.clip_frames_extract(clip=clip, progress=die_after_four)
    # What that run and an older one left: files with no row, a row outside the job, a file a storage race renamed.
    # (Extraction in parts may have stored a later part's frames already: up to all 10 files, and no row.)
    assert 3 <= len(frame_files(clip)) <= 10 and not clip.frames.exists()
    stray = services.frame_storage_name(clip, 2)
    Frame.objects.create(clip=clip, index=2, image=default_storage.save(stray, ContentFile(b"old")), width=160,
                         height=120, channels=1)
    default_storage.save(services.frame_storage_name(clip, 3).replace(".png", "_Ab12Cd.png"), ContentFile(b"x"))

    set_frames_per_clip(3)  # the study changes its mind while the clip waits for a new worker
    assert not services.clip_extract_frames(clip_id=clip.pk)  # redelivered while the dead worker's lease holds
    Clip.objects.filter(pk=clip.pk).update(extraction_lease_expires_at=timezone.now() - timedelta(seconds=1))
    assert services.clip_extract_frames(clip_id=clip.pk)  # the lease expired: the next delivery takes it over

    clip.refresh_from_db()
    frames = list(clip.frames.all())
    assert [f.index for f in frames] == [0, 3, 6, 10, 13, 16, 19, 23, 26, 29]
    assert (clip.extraction_status, clip.extraction_done, clip.extraction_total) == ("done", 10, 10)
    assert frame_files(clip) == sorted(f.image.name for f in frames)  # no orphans
    assert all(len(f.sha256) == 64 for f in frames)


def test_a_retry_is_a_new_request_frozen_with_the_settings_of_then(tmp_path):
    set_frames_per_clip(5)
    clip, _ = make_clip(tmp_path, extract=False)
    Path(clip.file.path).write_bytes(b"corrupted after upload")
    with pytest.raises(Exception):
        services.clip_extract_frames(clip_id=clip.pk)
    set_frames_per_clip(7)
    clip.refresh_from_db()
    services.clip_retry_extraction(clip=clip)
    clip.refresh_from_db()
    assert (clip.extraction_status, clip.extraction_frames_per_clip, clip.extraction_total) == ("queued", 7, 7)


def test_fewer_frames_asked_on_retry_remove_the_other_rows_and_files(tmp_path):
    set_frames_per_clip(6)
    clip, _ = make_clip(tmp_path)
    assert clip.frames.count() == 6
    Clip.objects.filter(pk=clip.pk).update(extraction_status="failed")
    set_frames_per_clip(2)
    clip.refresh_from_db()
    services.clip_retry_extraction(clip=clip)
    assert services.clip_extract_frames(clip_id=clip.pk)
    assert list(clip.frames.values_list("index", flat=True)) == [0, 11]
    assert frame_files(clip) == sorted(clip.frames.values_list("image", flat=True))


def extraction_queries(tmp_path, n_frames: int) -> int:
    set_frames_per_clip(n_frames)
    clip, _ = make_clip(tmp_path, extract=False, n_frames=n_frames, seed=n_frames)
    with CaptureQueriesContext(connection) as queries:
        assert services.clip_extract_frames(clip_id=clip.pk)
    assert clip.frames.count() == n_frames
    return len(queries)


def test_extraction_makes_the_same_few_queries_for_any_number_of_frames(tmp_path, monkeypatch):
    monkeypatch.setattr(services, "PROGRESS_EVERY_S", float("inf"))  # progress is timed; here, count the rest
    few, many = extraction_queries(tmp_path / "a", 3), extraction_queries(tmp_path / "b", 40)
    assert few == many <= 12, (few, many)
