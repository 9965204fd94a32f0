"""Upload and edit rules for clips: ultrasound only, stored names from content, duplicates, PATCH under the upload's rules."""

import shutil
import threading
from pathlib import Path

import pytest
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection
from pydicom.data import get_testdata_file

from mlworker.phantom.writers import write_avi_with_repeats
from studyapp.clips import services
from studyapp.clips.models import Clip
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


# ---------------------------------------------------------------- what is accepted

@pytest.mark.parametrize("name", ["CT_small.dcm", "MR_small.dcm"])
def test_ct_and_mr_dicom_are_refused_with_nothing_stored(tmp_path, name, api_for, users):
    path = Path(shutil.copy(get_testdata_file(name), tmp_path / name))
    hand = make_hand()
    response = api_for("coordinator").post("/api/clips/", {"hand": hand.pk, "file": upload_file(path)},
                                           format="multipart")
    assert response.status_code == 400
    assert "not ultrasound" in response.json()["file"][0]
    assert Clip.objects.count() == 0 and stored_files() == []


def test_variable_rate_avi_is_accepted_with_its_stored_frames_and_true_times(tmp_path, users):
    import numpy as np

    from studyapp.clips.models import Frame
    from studyapp.protocol.models import StudySettings

    StudySettings.objects.update_or_create(id=1, defaults={"frames_per_clip": 3})
    frames = [np.full((48, 64), 20 + 40 * k, np.uint8) for k in range(4)]
    path = write_avi_with_repeats(frames, [0, 5, 6, 29], 30, tmp_path / "vfr.avi", fps=30.0)
    clip = services.clip_upload(hand=make_hand(), upload=upload_file(path), pixel_spacing_mm=0.1)
    assert (clip.frame_count, clip.container) == (4, "avi")
    assert clip.fps == pytest.approx(3 / (29 / 30))
    assert services.clip_extract_frames(clip_id=clip.pk)
    stamps = list(Frame.objects.filter(clip=clip).values_list("index", "timestamp_s"))
    assert stamps == [(0, 0.0), (2, pytest.approx(6 / 30)), (3, pytest.approx(29 / 30))]


# ---------------------------------------------------------------- stored names

@pytest.mark.parametrize("source, upload_name, extension", [
    ("c.mp4", "Wrist scan (1).avi", ".mp4"),   # an MP4 named .avi is stored as what it is
    ("c.avi", "Wrist scan.mov", ".avi"),
    ("c.dcm", "IM_0001", ".dcm"),              # PACS exports without extension get one
    ("c.dcm", "1.2.840.113619.2.55.3", ".dcm"),
])
def test_stored_name_is_the_content_hash_with_the_detected_formats_extension(tmp_path, source, upload_name,
                                                                              extension):
    path, _ = phantom_file(tmp_path, source)
    clip = services.clip_upload(hand=make_hand(), upload=upload_file(path, upload_name), pixel_spacing_mm=0.2)
    assert clip.file.name == f"clips/{clip.sha256[:2]}/{clip.sha256}{extension}"
    assert clip.original_filename == upload_name  # kept for people, never used as a path
    assert stored_files() == [clip.file.name]


# ---------------------------------------------------------------- duplicates

def test_duplicate_upload_answers_409_with_the_existing_clip(tmp_path, api_for, users):
    path, _ = phantom_file(tmp_path, "c.mp4")
    api = api_for("coordinator")
    first = api.post("/api/clips/", {"hand": make_hand().pk, "file": upload_file(path), "pixel_spacing_mm": 0.2},
                     format="multipart")
    assert first.status_code == 201
    again = api.post("/api/clips/", {"hand": make_hand().pk, "file": upload_file(path, "renamed.mp4")},
                     format="multipart")
    assert again.status_code == 409
    body = again.json()
    assert body["code"] == "duplicate" and body["existing_clip"] == first.json()["id"]
    assert f"clip {first.json()['id']}" in body["detail"]
    assert Clip.objects.count() == 1 and len(stored_files()) == 1


def test_duplicate_on_the_form_links_the_existing_clip(tmp_path, client_for):
    path, _ = phantom_file(tmp_path, "c.mp4")
    existing = services.clip_upload(hand=make_hand(), upload=upload_file(path), pixel_spacing_mm=0.2)
    hand = make_hand()
    response = client_for("coordinator").post(f"/clips/hands/{hand.pk}/upload/", {"file": upload_file(path)})
    assert response.status_code == 400
    assert response.context["duplicate_of"] == existing
    assert f'href="/clips/{existing.pk}/"' in response.content.decode()
    assert response.context["form"].errors.as_data()["file"][0].code == "duplicate"


@pytest.mark.django_db(transaction=True)
def test_the_same_file_uploaded_twice_at_once_makes_one_clip(tmp_path):
    if connection.vendor != "postgresql":
        pytest.skip("real concurrent transactions need PostgreSQL")
    path, _ = phantom_file(tmp_path, "c.mp4")
    hands = [make_hand(), make_hand()]
    barrier, outcomes = threading.Barrier(2), []

    def upload(hand):
        try:
            barrier.wait()
            outcomes.append(services.clip_upload(hand=hand, upload=upload_file(path), pixel_spacing_mm=0.2))
        except services.DuplicateClip as duplicate:
            outcomes.append(duplicate)
        finally:
            connection.close()

    threads = [threading.Thread(target=upload, args=(hand,)) for hand in hands]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    clips = [o for o in outcomes if isinstance(o, Clip)]
    duplicates = [o for o in outcomes if isinstance(o, services.DuplicateClip)]
    assert len(clips) == 1 and len(duplicates) == 1, outcomes
    assert duplicates[0].existing.pk == clips[0].pk
    assert Clip.objects.count() == 1 and stored_files() == [clips[0].file.name]


# ---------------------------------------------------------------- one rule book for upload and edit

BAD_DETAILS = [
    ({"frequency_mhz": -5}, "frequency_mhz", "between 1 and 80 MHz"),
    ({"frequency_mhz": 1e9}, "frequency_mhz", "between 1 and 80 MHz"),
    ({"notes": "x" * 1_000_000}, "notes", "At most 5,000 characters"),
    ({"notes": "before\x00after"}, "notes", "control characters"),
    ({"probe": "p" * 121}, "probe", "At most 120 characters"),
]


@pytest.mark.parametrize("fields, field, message", BAD_DETAILS)
def test_upload_and_patch_refuse_the_same_details_with_the_same_message(tmp_path, api_for, users, fields, field,
                                                                         message):
    clip, _ = make_clip(tmp_path, extract=False)
    before = Clip.objects.values().get(pk=clip.pk)
    history = clip.history.count()
    response = api_for("coordinator").patch(f"/api/clips/{clip.pk}/", fields, format="json")
    assert response.status_code == 400
    assert message in " ".join(response.json()[field])
    assert Clip.objects.values().get(pk=clip.pk) == before and clip.history.count() == history

    path, _ = phantom_file(tmp_path, "other.avi", seed=2)
    with pytest.raises(ValidationError) as refused:
        services.clip_upload(hand=make_hand(), upload=upload_file(path), pixel_spacing_mm=0.2, **fields)
    assert message in " ".join(refused.value.message_dict[field])
    assert Clip.objects.count() == 1


def test_patch_changes_only_the_named_fields_and_is_audited(tmp_path, api_for, users):
    clip, _ = make_clip(tmp_path, extract=False)
    Clip.objects.filter(pk=clip.pk).update(scanner_model="Sono 9", probe="L12")
    response = api_for("coordinator").patch(f"/api/clips/{clip.pk}/", {"frequency_mhz": 15, "notes": "  sweep 2  ",
                                                                       "frame_count": 1}, format="json")
    assert response.status_code == 200, response.json()
    clip.refresh_from_db()
    assert (clip.frequency_mhz, clip.notes, clip.scanner_model, clip.probe, clip.frame_count) == \
        (15.0, "sweep 2", "Sono 9", "L12", 12)  # frame_count is read-only
    latest = clip.history.first()
    assert latest.history_user == users["coordinator"]
    assert latest.history_change_reason == "edited frequency_mhz, notes"
    assert (latest.frequency_mhz, latest.notes) == (15.0, "sweep 2")


def test_an_edit_does_not_overwrite_what_the_worker_wrote_meanwhile(tmp_path):
    clip, _ = make_clip(tmp_path, extract=False)  # this instance still says 'queued'
    Clip.objects.filter(pk=clip.pk).update(extraction_status="done", extraction_done=12, extraction_total=12)
    services.clip_update(clip=clip, notes="checked")
    clip.refresh_from_db()
    assert (clip.notes, clip.extraction_status, clip.extraction_done) == ("checked", "done", 12)
    assert clip.history.first().extraction_status == "done"


def test_an_edit_that_changes_nothing_writes_no_history(tmp_path):
    clip, _ = make_clip(tmp_path, extract=False)
    history = clip.history.count()
    services.clip_update(clip=clip, notes=clip.notes, frequency_mhz=clip.frequency_mhz)
    assert clip.history.count() == history


def test_only_the_typed_details_are_editable(tmp_path):
    clip, _ = make_clip(tmp_path, extract=False)
    with pytest.raises(ValidationError) as refused:
        services.clip_update(clip=clip, pixel_spacing_row_mm=9.0)
    assert "can't be set here" in str(refused.value)
