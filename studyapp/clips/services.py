"""Writes for clips: validated upload, calibration, and the frame extraction the worker runs."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile, File
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from mlworker.media import ClipError, extract_frames, open_clip, safe_filename, spacing_from_two_points
from studyapp.cohort.models import Hand
from studyapp.common.jobs import JobKind, LeaseLost, lease_claim, lease_expired, lease_kept, queue_on_commit
from studyapp.common.storage import local_path
from studyapp.protocol.models import StudySettings

from .models import Clip, Frame

CHUNK = 1024 * 1024


def _limits() -> dict:
    return {"max_width": settings.CTS_CLIP_MAX_DIMENSION, "max_height": settings.CTS_CLIP_MAX_DIMENSION,
            "max_frames": settings.CTS_CLIP_MAX_FRAMES}


def _refuse(code: str, message: str, field: str = "file") -> ValidationError:
    return ValidationError({field: ValidationError(message, code=code)})


def _spool(upload) -> tuple[Path, str, int]:
    """Copy an upload to a private temp file while hashing it; refuse it once it passes the size limit."""
    limit = settings.CTS_MAX_UPLOAD_MB * 1024 * 1024
    digest = hashlib.sha256()
    size = 0
    handle, name = tempfile.mkstemp(prefix="cts-upload-", dir=settings.FILE_UPLOAD_TEMP_DIR)
    try:
        with os.fdopen(handle, "wb") as out:
            for chunk in upload.chunks(CHUNK):
                size += len(chunk)
                if size > limit:
                    raise _refuse("too_large", f"The file is over the {settings.CTS_MAX_UPLOAD_MB} MB limit. "
                                               "Export a shorter clip or ask an administrator to raise the limit.")
                digest.update(chunk)
                out.write(chunk)
    except BaseException:
        os.unlink(name)
        raise
    return Path(name), digest.hexdigest(), size


def _validate_spacing(value: float | None, field: str) -> None:
    if value is not None and not 0.001 <= value <= 5.0:
        raise _refuse("bad_spacing", "Pixel spacing must be between 0.001 and 5 mm per pixel.", field)


def clip_upload(*, hand: Hand, upload, uploaded_by=None, pixel_spacing_mm: float | None = None,
                scanner_model: str = "", probe: str = "", frequency_mhz: float | None = None,
                notes: str = "", queue_extraction: bool = True) -> Clip:
    """Validate an uploaded clip, store it once, and queue its frame extraction.

    Any refusal raises ValidationError and leaves neither a stored file nor a row behind.
    """
    try:
        filename = safe_filename(upload.name or "")
    except ClipError as error:
        raise _refuse(error.code, error.message) from None
    _validate_spacing(pixel_spacing_mm, "pixel_spacing_mm")
    if frequency_mhz is not None and not 1 <= frequency_mhz <= 80:
        raise _refuse("bad_frequency", "Probe frequency must be between 1 and 80 MHz.", "frequency_mhz")
    temp_path, sha256, size = _spool(upload)
    stored_name = None
    try:
        existing = Clip.objects.filter(sha256=sha256).select_related("hand__participant").first()
        if existing is not None:
            raise _refuse("duplicate", f"This exact file was already uploaded as clip {existing.pk} of "
                                       f"{existing.hand}; it is not stored twice.")
        try:
            with open_clip(temp_path, **_limits()) as reader:
                info = reader.info
        except ClipError as error:
            raise _refuse(error.code, error.message) from None
        spacing, source = info.pixel_spacing_mm, Clip.SpacingSource.DICOM
        if spacing is None and pixel_spacing_mm is not None:
            spacing, source = (pixel_spacing_mm, pixel_spacing_mm), Clip.SpacingSource.ENTERED
        elif spacing is None:
            source = Clip.SpacingSource.NONE
        extension = Path(filename).suffix or ".dcm"
        with temp_path.open("rb") as handle:
            stored_name = default_storage.save(f"clips/{sha256[:2]}/{sha256}{extension}", File(handle))
        with transaction.atomic():
            clip = Clip.objects.create(
                hand=hand, file=stored_name, original_filename=filename, sha256=sha256, size_bytes=size,
                format=info.format, container=info.container, frame_count=info.frame_count, fps=info.fps,
                width=info.width, height=info.height, is_grey=info.is_grey,
                pixel_spacing_row_mm=spacing[0] if spacing else None,
                pixel_spacing_col_mm=spacing[1] if spacing else None, spacing_source=source,
                scanner_model=scanner_model or info.model_name or "",
                probe=probe or info.transducer or "",
                frequency_mhz=frequency_mhz if frequency_mhz is not None else info.frequency_mhz,
                notes=notes, uploaded_by=uploaded_by,
                extraction_total=min(info.frame_count, StudySettings.current().frames_per_clip))
            if queue_extraction:
                queue_on_commit(EXTRACTION, clip.pk)
        clip.refresh_from_db(fields=["extraction_status", "extraction_error"])  # queueing may have failed
        return clip
    except BaseException:
        if stored_name:
            default_storage.delete(stored_name)
        raise
    finally:
        temp_path.unlink(missing_ok=True)


def _queue_extraction(clip_id: int) -> None:
    from .tasks import extract_clip_frames

    extract_clip_frames.delay(clip_id)


@transaction.atomic
def clip_set_spacing(*, clip: Clip, spacing_mm: float, source: str = Clip.SpacingSource.ENTERED) -> Clip:
    """Set an isotropic pixel spacing for a clip whose file does not carry one."""
    if clip.spacing_source == Clip.SpacingSource.DICOM:
        raise _refuse("spacing_from_dicom", "This clip's spacing comes from its DICOM header and can't be changed.",
                      "pixel_spacing_mm")
    _validate_spacing(spacing_mm, "pixel_spacing_mm")
    if clip.frames.filter(rois__isnull=False).exists():
        # The ROI boxes were sized with the old spacing; silently changing it would change their physical size.
        raise _refuse("spacing_in_use", "ROIs were already placed with this clip's spacing; it can no longer change. "
                                        "Upload the clip again if the spacing was wrong.", "pixel_spacing_mm")
    clip.pixel_spacing_row_mm = clip.pixel_spacing_col_mm = spacing_mm
    clip.spacing_source = source
    clip.save()
    return clip


def clip_calibrate(*, clip: Clip, p1, p2, distance_mm: float) -> Clip:
    """Spacing from two points clicked a known distance apart (e.g. depth-scale marks)."""
    try:
        spacing = spacing_from_two_points(p1, p2, distance_mm)
    except ValueError as error:
        raise _refuse("bad_calibration", str(error), "distance_mm") from None
    return clip_set_spacing(clip=clip, spacing_mm=spacing, source=Clip.SpacingSource.CALIBRATED)


def clip_extraction_stuck(clip: Clip) -> bool:
    """Running, but its worker stopped renewing the lease: the worker is gone and the clip can be retried."""
    return lease_expired(EXTRACTION, clip)


def clip_retry_extraction(*, clip: Clip) -> Clip:
    """Queue a failed extraction again, or one whose worker died (running with an expired lease)."""
    retryable = Q(extraction_status=Clip.Extraction.FAILED) | EXTRACTION.expired(timezone.now())
    if not Clip.objects.filter(retryable, pk=clip.pk).update(extraction_status=Clip.Extraction.QUEUED,
                                                             extraction_error="", extraction_task_id="",
                                                             extraction_lease_expires_at=None):
        raise _refuse("not_failed", "Only a failed extraction, or one whose worker stopped, can be retried.",
                      "extraction_status")
    queue_on_commit(EXTRACTION, clip.pk)  # at once unless called inside a transaction
    clip.refresh_from_db()
    return clip


# --- assignment: who annotates a clip ----------------------------------------------------------------------

ANNOTATE_PERM = "annotations.add_roiannotation"
ASSIGN_PERM = "clips.assign_clip"


def _locked_clip(clip: Clip) -> Clip:
    """The clip's row, locked, so two people taking it at once can't both get it."""
    return Clip.objects.select_for_update(of=("self",)).select_related("assigned_to").get(pk=clip.pk)


def _set_assignee(clip: Clip, annotator) -> Clip:
    clip.assigned_to = annotator
    clip.save(update_fields=["assigned_to"])  # not the extraction fields the worker may be writing
    return clip


@transaction.atomic
def clip_assign(*, clip: Clip, annotator, assigned_by) -> Clip:
    """Hand a clip to an annotator, or make it open again (annotator None); kept in the clip's history."""
    if not assigned_by.has_perm(ASSIGN_PERM):
        raise _refuse("not_allowed", "Only a coordinator, the PI or an admin assigns clips.", "annotator")
    if annotator is not None and not (annotator.is_active and annotator.has_perm(ANNOTATE_PERM)):
        raise _refuse("not_an_annotator", f"{annotator.get_username()} can't annotate: choose an annotator.",
                      "annotator")
    return _set_assignee(_locked_clip(clip), annotator)


@transaction.atomic
def clip_take(*, clip: Clip, annotator) -> Clip:
    """An annotator takes an open clip for themself."""
    if not annotator.has_perm(ANNOTATE_PERM):
        raise _refuse("not_an_annotator", "Only annotators take clips.", "annotator")
    clip = _locked_clip(clip)
    if clip.assigned_to_id == annotator.pk:
        return clip
    if clip.assigned_to_id is not None:
        raise _refuse("already_assigned", f"Clip {clip.pk} is already assigned to "
                                          f"{clip.assigned_to.get_username()}.", "annotator")
    return _set_assignee(clip, annotator)


@transaction.atomic
def clip_release(*, clip: Clip, user) -> Clip:
    """Give a clip back to the open pool: its assignee may, and so may whoever assigns clips."""
    clip = _locked_clip(clip)
    if clip.assigned_to_id is None:
        return clip
    if clip.assigned_to_id != user.pk and not user.has_perm(ASSIGN_PERM):
        raise _refuse("not_yours", f"Clip {clip.pk} is assigned to {clip.assigned_to.get_username()}; only they "
                                   "or a coordinator can release it.", "annotator")
    return _set_assignee(clip, None)


def frame_storage_name(clip: Clip, index: int) -> str:
    return f"frames/{clip.sha256[:2]}/{clip.sha256}/frame_{index:05d}.png"


EXTRACTION = JobKind(Clip, queue=lambda pk: _queue_extraction(pk), states=Clip.Extraction,
                     status="extraction_status", token="extraction_task_id", expires="extraction_lease_expires_at",
                     error="extraction_error", finished="extraction_finished_at")


def clip_extract_frames(*, clip_id: int) -> bool:
    """Extract the study's N evenly spaced frames; safe to run again (same frames, same names, no doubles).

    Returns False when the clip is not to be extracted now: finished, or held by a live worker (a second
    delivery). A clip whose worker died is taken over once its lease expired. Errors are recorded on the
    clip, then re-raised.
    """
    lease = lease_claim(EXTRACTION, clip_id, extraction_done=0, extraction_error="",
                        extraction_started_at=timezone.now(), extraction_finished_at=None)
    if lease is None:
        return False
    with lease_kept(lease):
        try:
            _extract(lease, clip_id)
        except LeaseLost:
            return False
        except Exception as error:  # recorded for the UI, then re-raised for the worker log
            message = error.message if isinstance(error, ClipError) else f"{type(error).__name__}: {error}"
            lease.finish(Clip.Extraction.FAILED, extraction_error=message, extraction_finished_at=timezone.now())
            raise
        lease.finish(Clip.Extraction.DONE, extraction_done=F("extraction_total"),
                     extraction_finished_at=timezone.now())
    return True


def _extract(lease, clip_id: int) -> None:
    clip = Clip.objects.get(pk=clip_id)
    n_frames = StudySettings.current().frames_per_clip
    with tempfile.TemporaryDirectory(prefix="cts-clip-") as cache, \
            open_clip(local_path(clip.file.name, Path(cache)), **_limits()) as reader:
        Clip.objects.filter(pk=clip_id).update(extraction_total=min(reader.info.frame_count, n_frames))

        def progress(done: int, total: int) -> None:
            lease.check()
            if done == total or done % 5 == 0:
                lease.update(extraction_done=done, extraction_total=total)

        rows = []
        for frame in extract_frames(reader, n_frames, progress=progress):
            name = frame_storage_name(clip, frame.index)
            if default_storage.exists(name):
                default_storage.delete(name)  # deterministic names: a rerun replaces, never doubles
            default_storage.save(name, ContentFile(frame.png))
            rows.append((frame, name))
    with transaction.atomic():  # the frame rows appear together, once every file is stored
        lease.check()
        for frame, name in rows:
            Frame.objects.update_or_create(clip=clip, index=frame.index, defaults={
                "timestamp_s": frame.timestamp_s, "image": name, "sha256": hashlib.sha256(frame.png).hexdigest(),
                "width": frame.width, "height": frame.height, "channels": frame.channels})
        stale = clip.frames.exclude(index__in=[frame.index for frame, _ in rows])
        for old in stale:
            default_storage.delete(old.image.name)
        stale.delete()
