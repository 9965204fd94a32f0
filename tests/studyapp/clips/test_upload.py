import os
from pathlib import Path

import pytest
from django.conf import settings
from django.core.exceptions import ValidationError

from studyapp.clips import services
from studyapp.clips.models import Clip, Frame
from tests.factories import make_clip, make_hand, phantom_file, upload_file

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_broker(monkeypatch):
    queued = []
    monkeypatch.setattr(services, "_queue_extraction", queued.append)
    return queued


def stored_files() -> list[str]:
    root = Path(settings.MEDIA_ROOT)
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) if root.exists() else []


@pytest.mark.parametrize("name, fmt, container", [("c.mp4", "video", "mp4"), ("c.avi", "video", "avi"),
                                                  ("c.dcm", "dicom", "dicom")])
def test_upload_each_format(tmp_path, no_broker, django_capture_on_commit_callbacks, name, fmt, container):
    hand = make_hand()
    path, phantom = phantom_file(tmp_path, name)
    with django_capture_on_commit_callbacks(execute=True):
        clip = services.clip_upload(hand=hand, upload=upload_file(path), pixel_spacing_mm=0.25, scanner_model="X",
                                    frequency_mhz=15)
    assert (clip.format, clip.container, clip.frame_count, clip.width, clip.height) == (fmt, container, 12, 160, 120)
    assert clip.size_bytes == path.stat().st_size and len(clip.sha256) == 64
    assert clip.spacing_mm == (0.25, 0.25)
    assert clip.spacing_source == ("dicom" if fmt == "dicom" else "entered")
    assert no_broker == [clip.pk]  # extraction queued after commit
    assert stored_files() == [clip.file.name]


def test_dicom_pixel_spacing_is_read_exactly(tmp_path):
    clip, _ = make_clip(tmp_path, name="c.dcm", extract=False, pixel_spacing_mm=0.1875)
    assert clip.pixel_spacing_row_mm == 0.1875 and clip.pixel_spacing_col_mm == 0.1875
    assert clip.scanner_model == "Phantom US" and clip.probe == "L18-4" and clip.frequency_mhz == 18.0


def test_same_file_twice_is_recognised_and_not_stored_twice(tmp_path):
    path, _ = phantom_file(tmp_path, "c.mp4")
    first = services.clip_upload(hand=make_hand(), upload=upload_file(path))
    with pytest.raises(ValidationError) as raised:
        services.clip_upload(hand=make_hand(), upload=upload_file(path, "renamed.mp4"))
    assert f"already uploaded as clip {first.pk}" in str(raised.value)
    assert Clip.objects.count() == 1 and len(stored_files()) == 1


def _truncated(tmp_path, name):
    path, _ = phantom_file(tmp_path, name)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


BAD_FILES = {
    "random bytes": lambda d: (d / "x.mp4").write_bytes(os.urandom(4000)) and d / "x.mp4",
    "text renamed": lambda d: (d / "notes.mp4").write_text("hello, this is not a video\n" * 50) and d / "notes.mp4",
    "empty": lambda d: (d / "e.mp4").write_bytes(b"") is not None and d / "e.mp4",
    "truncated mp4": lambda d: _truncated(d, "t.mp4"),
    "truncated avi": lambda d: _truncated(d, "t.avi"),
    "truncated dicom": lambda d: _truncated(d, "t.dcm"),
}


@pytest.mark.parametrize("kind", BAD_FILES)
def test_bad_files_are_refused_and_nothing_remains(tmp_path, kind, no_broker):
    path = BAD_FILES[kind](tmp_path)
    with pytest.raises(ValidationError) as raised:
        services.clip_upload(hand=make_hand(), upload=upload_file(path))
    assert "file" in raised.value.message_dict and raised.value.message_dict["file"][0]
    assert Clip.objects.count() == 0 and stored_files() == [] and no_broker == []


@pytest.mark.parametrize("name", ["../../etc/passwd.mp4", "a/b.mp4", "..\\x.mp4", "clip\x00.mp4", "clip.exe"])
def test_filenames_with_path_tricks_are_refused(tmp_path, name):
    from django.core.files.base import ContentFile

    path, _ = phantom_file(tmp_path, "c.mp4")
    # Django's multipart parser already drops directories; the service refuses them for any other caller.
    with pytest.raises(ValidationError):
        services.clip_upload(hand=make_hand(), upload=ContentFile(path.read_bytes(), name=name))
    assert Clip.objects.count() == 0 and stored_files() == []


def test_size_limit_and_absurd_dimensions(tmp_path, settings):
    path, _ = phantom_file(tmp_path, "c.mp4")
    settings.CTS_MAX_UPLOAD_MB = 0
    with pytest.raises(ValidationError) as raised:
        services.clip_upload(hand=make_hand(), upload=upload_file(path))
    assert "MB limit" in str(raised.value)
    settings.CTS_MAX_UPLOAD_MB = 10
    settings.CTS_CLIP_MAX_DIMENSION = 100
    with pytest.raises(ValidationError):
        services.clip_upload(hand=make_hand(), upload=upload_file(path))
    assert Clip.objects.count() == 0 and stored_files() == []


def test_a_failing_row_write_removes_the_stored_file(tmp_path, monkeypatch):
    path, _ = phantom_file(tmp_path, "c.mp4")

    def boom(*args, **kwargs):
        raise RuntimeError("database went away")
    monkeypatch.setattr(Clip.objects, "create", boom)
    with pytest.raises(RuntimeError):
        services.clip_upload(hand=make_hand(), upload=upload_file(path))
    assert stored_files() == []


def test_extraction_is_evenly_spaced_lossless_and_idempotent(tmp_path, settings):
    from studyapp.protocol.models import StudySettings

    StudySettings.objects.update_or_create(id=1, defaults={"frames_per_clip": 5})
    clip, phantom = make_clip(tmp_path, extract=False)
    assert services.clip_extract_frames(clip_id=clip.pk)
    frames = list(Frame.objects.filter(clip=clip))
    assert [f.index for f in frames] == [0, 3, 6, 8, 11]
    assert all(f.channels == 1 and (f.width, f.height) == (160, 120) for f in frames)
    assert frames[1].timestamp_s == pytest.approx(3 / 25)
    import cv2
    import numpy as np
    with frames[2].image.open("rb") as handle:
        image = cv2.imdecode(np.frombuffer(handle.read(), np.uint8), cv2.IMREAD_UNCHANGED)
    assert image.ndim == 2 and image.shape == (120, 160)
    before = (stored_files(), [(f.pk, f.image.name) for f in frames])
    assert not services.clip_extract_frames(clip_id=clip.pk)  # done: a late second delivery is dropped
    Clip.objects.filter(pk=clip.pk).update(extraction_status="queued")
    assert services.clip_extract_frames(clip_id=clip.pk)
    assert (stored_files(), [(f.pk, f.image.name) for f in Frame.objects.filter(clip=clip)]) == before
    clip.refresh_from_db()
    assert (clip.extraction_status, clip.extraction_done, clip.extraction_total) == ("done", 5, 5)


def test_extraction_failure_is_recorded_and_can_be_retried(tmp_path, no_broker):
    clip, _ = make_clip(tmp_path, extract=False)
    Path(clip.file.path).write_bytes(b"corrupted after upload")
    with pytest.raises(Exception):
        services.clip_extract_frames(clip_id=clip.pk)
    clip.refresh_from_db()
    assert clip.extraction_status == "failed" and clip.extraction_error
    services.clip_retry_extraction(clip=clip)
    clip.refresh_from_db()
    assert clip.extraction_status == "queued" and clip.extraction_error == ""


def test_a_running_extraction_is_taken_over_only_once_its_lease_expired(tmp_path):
    import datetime as dt

    from django.utils import timezone

    clip, _ = make_clip(tmp_path, extract=False)
    live = timezone.now() + dt.timedelta(seconds=30)
    Clip.objects.filter(pk=clip.pk).update(extraction_status="running", extraction_task_id="a-live-worker",
                                           extraction_lease_expires_at=live)
    assert services.clip_extract_frames(clip_id=clip.pk) is False  # a second delivery while it runs
    assert not services.clip_extraction_stuck(Clip.objects.get(pk=clip.pk))
    with pytest.raises(ValidationError, match="worker stopped"):
        services.clip_retry_extraction(clip=clip)
    Clip.objects.filter(pk=clip.pk).update(extraction_lease_expires_at=timezone.now() - dt.timedelta(seconds=1))
    assert services.clip_extraction_stuck(Clip.objects.get(pk=clip.pk))
    assert services.clip_extract_frames(clip_id=clip.pk) is True  # its worker died: the next one takes it over
    clip.refresh_from_db()
    assert clip.extraction_status == "done" and clip.extraction_lease_expires_at is None


def test_a_clip_left_running_by_a_dead_worker_can_be_retried(tmp_path, no_broker):
    import datetime as dt

    from django.utils import timezone

    clip, _ = make_clip(tmp_path, extract=False)
    Clip.objects.filter(pk=clip.pk).update(extraction_status="running", extraction_task_id="dead",
                                           extraction_lease_expires_at=timezone.now() - dt.timedelta(seconds=1))
    services.clip_retry_extraction(clip=clip)
    clip.refresh_from_db()
    assert (clip.extraction_status, clip.extraction_task_id, clip.extraction_lease_expires_at) == ("queued", "", None)


def test_calibration(tmp_path):
    clip, _ = make_clip(tmp_path, extract=False, spacing=None)
    assert clip.spacing_mm is None
    services.clip_calibrate(clip=clip, p1=(10, 10), p2=(10, 90), distance_mm=20)
    clip.refresh_from_db()
    assert clip.spacing_mm == (0.25, 0.25) and clip.spacing_source == "calibrated"
    dicom, _ = make_clip(tmp_path, name="d.dcm", extract=False)
    with pytest.raises(ValidationError):
        services.clip_set_spacing(clip=dicom, spacing_mm=0.3)


def test_spacing_cannot_change_once_rois_exist(tmp_path, users):
    from studyapp.annotations import services as annotation_services

    clip, _ = make_clip(tmp_path)
    annotation_services.roi_save(frame=clip.frames.first(), annotator=users["annotator"], center_x=80, center_y=60)
    with pytest.raises(ValidationError) as raised:
        services.clip_set_spacing(clip=clip, spacing_mm=0.3)
    assert "already placed" in str(raised.value)
    clip.refresh_from_db()
    assert clip.spacing_mm == (0.25, 0.25)
