"""Writes for clips: validated upload, calibration, and the frame extraction the worker runs."""

from __future__ import annotations

import hashlib
import math
import os
import tempfile
import time
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile, File
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

# Readers and geometry load no OpenCV: the web process validates uploads with PyAV and pydicom only.
from mlworker.media import ClipError, open_clip, safe_filename, spacing_from_two_points
from mlworker.media.readers import stored_extension
from studyapp.cohort.models import Hand
from studyapp.common.jobs import JobKind, Lease, LeaseLost, lease_claim, lease_expired, lease_kept, queue_on_commit
from studyapp.common.storage import local_path
from studyapp.protocol.models import StudySettings

from studyapp.sites import selectors as site_selectors
from studyapp.sites.institutions import MAX_NAME_LENGTH
from studyapp.sites.models import Site

from .models import Clip, Frame

if TYPE_CHECKING:
    from mlworker.media import ExtractedFrame

CHUNK = 1024 * 1024


def _limits() -> dict:
    return {"max_width": settings.CTS_CLIP_MAX_DIMENSION, "max_height": settings.CTS_CLIP_MAX_DIMENSION,
            "max_frames": settings.CTS_CLIP_MAX_FRAMES}


def _extraction_job(*, frame_count: int) -> dict:
    """The extraction job's fields as the study asks for it now, frozen on the clip row when it is queued."""
    frames_per_clip = StudySettings.current().frames_per_clip
    return {"extraction_frames_per_clip": frames_per_clip, "extraction_total": min(frame_count, frames_per_clip)}


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
    if value is not None and not (math.isfinite(value) and 0.001 <= value <= 5.0):
        raise _refuse("bad_spacing", "Pixel spacing must be between 0.001 and 5 mm per pixel.", field)


# What a person types about a clip, at upload and on every later edit: (field, most characters).
DETAIL_TEXT_LIMITS = {"scanner_manufacturer": 120, "scanner_model": 120, "probe": 120, "notes": 5000}
# Editable by PATCH. Where and on what the clip was acquired (they place it in an external split's sites or
# scanners) change only through the audited correction, with a reason: clip_site_correct.
EDITABLE_FIELDS = ("probe", "notes", "frequency_mhz")
ACQUISITION_FIELDS = ("site", "scanner_manufacturer", "scanner_model")
UPLOAD_DETAILS = ("scanner_manufacturer", "scanner_model", *EDITABLE_FIELDS)
FREQUENCY_RANGE_MHZ = (1.0, 80.0)


def validate_details(fields: dict, *, allowed: tuple[str, ...] = EDITABLE_FIELDS) -> dict:
    """The one rule book for a clip's typed details (scanner, probe, frequency, notes): upload and edit alike.

    Returns the cleaned values (text trimmed); raises one ValidationError naming every refused field.
    """
    unknown = set(fields) - set(allowed)
    if unknown:
        raise _refuse("not_editable", f"{', '.join(sorted(unknown))} can't be set here; only "
                                      f"{', '.join(allowed)} can.", sorted(unknown)[0])
    errors: dict[str, ValidationError] = {}
    cleaned: dict = {}
    for field, value in fields.items():
        if field == "frequency_mhz":
            low, high = FREQUENCY_RANGE_MHZ
            if value is not None and not (isinstance(value, (int, float)) and math.isfinite(value)
                                          and low <= value <= high):
                errors[field] = ValidationError(f"Probe frequency must be between {low:g} and {high:g} MHz.",
                                                code="bad_frequency")
            cleaned[field] = None if value is None else float(value)
            continue
        text = unicodedata.normalize("NFC", str(value or "")).strip()
        limit = DETAIL_TEXT_LIMITS[field]
        if len(text) > limit:
            errors[field] = ValidationError(f"At most {limit:,} characters, got {len(text):,}.", code="too_long")
        elif any(unicodedata.category(ch) == "Cc" and ch not in "\n\r\t" for ch in text):
            # NUL bytes cannot be stored in PostgreSQL text, and other control characters hide content.
            errors[field] = ValidationError("Contains invisible control characters; retype it.",
                                            code="control_characters")
        cleaned[field] = text
    if errors:
        raise ValidationError(errors)
    return cleaned


class DuplicateClip(ValidationError):
    """The exact file (same SHA-256) is already a clip: the API answers 409 with the existing clip's id."""

    def __init__(self, existing: Clip) -> None:
        self.existing = existing
        super().__init__({"file": ValidationError(
            f"This exact file was already uploaded as clip {existing.pk} of {existing.hand}; it is not stored "
            "twice.", code="duplicate")})


def _existing_clip(sha256: str) -> Clip | None:
    return Clip.objects.filter(sha256=sha256).select_related("hand__participant").first()


def clip_upload(*, hand: Hand, upload, uploaded_by=None, pixel_spacing_mm: float | None = None,
                site: Site | None = None, scanner_manufacturer: str = "", scanner_model: str = "",
                probe: str = "", frequency_mhz: float | None = None, notes: str = "",
                queue_extraction: bool = True) -> Clip:
    """Validate an uploaded clip, store it once under a name of its content, and queue its frame extraction.

    Site and scanner come from the DICOM header where it has them (see acquisition_from_header); `site`,
    `scanner_manufacturer` and `scanner_model` are what the uploader entered, used where it has not.
    Any refusal raises ValidationError (DuplicateClip for a file already uploaded) and leaves neither a
    stored file nor a row behind.
    """
    try:
        filename = safe_filename(upload.name or "")
    except ClipError as error:
        raise _refuse(error.code, error.message) from None
    _validate_spacing(pixel_spacing_mm, "pixel_spacing_mm")
    details = validate_details({"scanner_manufacturer": scanner_manufacturer, "scanner_model": scanner_model,
                                "probe": probe, "frequency_mhz": frequency_mhz, "notes": notes},
                               allowed=UPLOAD_DETAILS)
    temp_path, sha256, size = _spool(upload)
    stored_name = None
    try:
        existing = _existing_clip(sha256)
        if existing is not None:
            raise DuplicateClip(existing)
        try:
            with open_clip(temp_path, **_limits()) as reader:
                info = reader.info
        except ClipError as error:
            raise _refuse(error.code, error.message) from None
        acquisition = acquisition_from_header(info, entered_site=site,
                                              entered_manufacturer=details["scanner_manufacturer"],
                                              entered_model=details["scanner_model"])
        spacing, source = info.pixel_spacing_mm, Clip.SpacingSource.DICOM
        if spacing is None and pixel_spacing_mm is not None:
            spacing, source = (pixel_spacing_mm, pixel_spacing_mm), Clip.SpacingSource.ENTERED
        elif spacing is None:
            source = Clip.SpacingSource.NONE
        # The stored name is made of the content's hash and the extension of the format found inside,
        # never the uploader's name (which stays in original_filename, for people to read).
        with temp_path.open("rb") as handle:
            stored_name = default_storage.save(f"clips/{sha256[:2]}/{sha256}{stored_extension(info)}",
                                               File(handle))
        try:
            with transaction.atomic():
                clip = Clip.objects.create(
                    hand=hand, file=stored_name, original_filename=filename, sha256=sha256, size_bytes=size,
                    format=info.format, container=info.container, frame_count=info.frame_count, fps=info.fps,
                    width=info.width, height=info.height, is_grey=info.is_grey,
                    pixel_spacing_row_mm=spacing[0] if spacing else None,
                    pixel_spacing_col_mm=spacing[1] if spacing else None, spacing_source=source,
                    **acquisition,
                    probe=details["probe"] or (info.transducer or "")[:DETAIL_TEXT_LIMITS["probe"]],
                    frequency_mhz=details["frequency_mhz"] if details["frequency_mhz"] is not None
                    else _plausible_frequency(info.frequency_mhz),
                    notes=details["notes"], uploaded_by=uploaded_by,
                    **_extraction_job(frame_count=info.frame_count))
                if queue_extraction:
                    queue_on_commit(EXTRACTION, clip.pk)
        except IntegrityError:
            existing = _existing_clip(sha256)  # the same file uploaded at the same moment by someone else
            if existing is None:
                raise
            raise DuplicateClip(existing) from None
        clip.refresh_from_db(fields=["extraction_status", "extraction_error"])  # queueing may have failed
        return clip
    except BaseException:
        if stored_name:
            default_storage.delete(stored_name)
        raise
    finally:
        temp_path.unlink(missing_ok=True)


def _header_text(value: str | None, field: str) -> str:
    return (value or "")[:DETAIL_TEXT_LIMITS[field]]


def acquisition_from_header(info, *, entered_site: Site | None, entered_manufacturer: str = "",
                            entered_model: str = "") -> dict:
    """Where and on what a clip was acquired: the header where it says, what the uploader entered elsewhere.

    The rule, one place:
    - A DICOM InstitutionName that a site lists among its institution names assigns that site
      (site_source "dicom"); an entered site that differs is refused, since the file says otherwise.
    - Video (no header), or a DICOM whose institution no site lists: the entered site (site_source
      "entered"); none entered, the clip is stored without a site and shows "site missing" until corrected
      (an external split refuses hands with such clips). The unmatched InstitutionName is kept on the clip,
      so the PI can add it to a site's names.
    - Scanner manufacturer and model: the header's where present, else the entered ones.
    """
    institution = (info.institution_name or "")[:MAX_NAME_LENGTH]
    matched = site_selectors.site_for_institution(institution) if institution else None
    if matched is not None and entered_site is not None and entered_site.pk != matched.pk:
        raise _refuse("site_conflicts_with_dicom",
                      f'The file\'s DICOM header names "{institution}", which is site {matched.code}; you chose '
                      f"{entered_site.code}. Leave the site empty to use the header's, or correct it after upload "
                      "with a reason.", "site")
    if matched is not None:
        site, site_source = matched, Clip.SiteSource.DICOM
    elif entered_site is not None:
        site, site_source = entered_site, Clip.SiteSource.ENTERED
    else:
        site, site_source = None, Clip.SiteSource.NONE
    return {"site": site, "site_source": site_source, "institution_name": institution,
            "scanner_manufacturer": _header_text(info.manufacturer, "scanner_manufacturer") or entered_manufacturer,
            "scanner_model": _header_text(info.model_name, "scanner_model") or entered_model}


CORRECT_PERM = "clips.correct_site"
CORRECTION_REASON_MAX = 100  # simple_history's change reason column


def acquisition_token(clip: Clip) -> str:
    """A short fingerprint of the clip's site and scanner: a correction names the one it was made on."""
    values = f"{clip.site_id or ''}\x1f{clip.scanner_manufacturer}\x1f{clip.scanner_model}"
    return hashlib.sha256(values.encode()).hexdigest()[:16]


@transaction.atomic
def clip_site_correct(*, clip: Clip, site: Site | None, scanner_manufacturer: str, scanner_model: str,
                      reason: str, corrected_by, expected_token: str | None = None) -> Clip:
    """Correct where and on what a clip was acquired; the history records who, the reason and the values.

    The site may be set, changed or (None) cleared. `expected_token` (acquisition_token of the values the
    corrector saw) refuses a correction made on values someone else corrected meanwhile. A locked external
    split's manifest records each entry's site and scanner, so a correction of its clips blocks its training
    (the split check names the hands); an internal split's manifest does not depend on them.
    """
    if not corrected_by.has_perm(CORRECT_PERM):
        raise _refuse("not_allowed", "Only a coordinator, the PI or an admin corrects a clip's site and scanner.",
                      "site")
    reason = unicodedata.normalize("NFC", str(reason or "")).strip()
    if not reason:
        raise _refuse("reason_required", "Say why the site or scanner is corrected (it is kept in the clip's "
                                         "history).", "reason")
    if len(reason) > CORRECTION_REASON_MAX:
        raise _refuse("too_long", f"The reason has at most {CORRECTION_REASON_MAX} characters, got {len(reason)}.",
                      "reason")
    details = validate_details({"scanner_manufacturer": scanner_manufacturer, "scanner_model": scanner_model},
                               allowed=("scanner_manufacturer", "scanner_model"))
    current = Clip.objects.select_for_update(of=("self",)).select_related("site").get(pk=clip.pk)
    if expected_token and expected_token != acquisition_token(current):
        raise _refuse("stale_version", "Someone corrected this clip's site or scanner since you loaded it: now "
                                       f"{current.site.code if current.site else 'no site'}, "
                                       f"{(current.scanner_manufacturer + ' ' + current.scanner_model).strip() or 'no scanner'}. "
                                       "Check them, then correct again.", "site")
    wanted = {"site_id": site.pk if site is not None else None, **details}
    changed = [field for field, value in wanted.items() if getattr(current, field) != value]
    if not changed:
        raise _refuse("unchanged", "These are already the clip's site and scanner; nothing to correct.", "site")
    for field in changed:
        setattr(current, field, wanted[field])
    current.site_source = Clip.SiteSource.CORRECTED
    current._history_user = corrected_by
    current._change_reason = reason
    # Only these columns: the extraction worker may be writing its progress on the same row.
    current.save(update_fields=[*(f.removesuffix("_id") for f in changed), "site_source"])
    return current


def _plausible_frequency(value: float | None) -> float | None:
    """A frequency read from a DICOM header, kept only when it passes the rule typed values pass."""
    low, high = FREQUENCY_RANGE_MHZ
    return value if value is not None and math.isfinite(value) and low <= value <= high else None


@transaction.atomic
def clip_update(*, clip: Clip, history_user=None, **fields) -> Clip:
    """Edit a clip's typed details under the upload's rules; only the named fields change, audited.

    The site and scanner may be named with the values the clip has (a client sending back what it read);
    a different value is refused: they change only through clip_site_correct, with a reason.
    The row is locked and re-read so the extraction worker's progress fields are neither overwritten nor
    recorded stale in the history.
    """
    acquisition = {field: fields.pop(field) for field in ACQUISITION_FIELDS if field in fields}
    cleaned = validate_details(fields)
    current = Clip.objects.select_for_update(of=("self",)).get(pk=clip.pk)
    _refuse_acquisition_changes(current, acquisition)
    changed = [field for field, value in cleaned.items() if getattr(current, field) != value]
    if not changed:
        return current
    for field in changed:
        setattr(current, field, cleaned[field])
    if history_user is not None:
        current._history_user = history_user
    current._change_reason = f"edited {', '.join(changed)}"[:100]
    current.save(update_fields=changed)
    return current


def _refuse_acquisition_changes(clip: Clip, named: dict) -> None:
    def plain(text) -> str:  # both sides: a DICOM header's text is stored as read, not normalised
        return unicodedata.normalize("NFC", str(text or "")).strip()

    for field, value in named.items():
        if field == "site":
            same = (value.pk if value is not None else None) == clip.site_id
        else:
            same = plain(value) == plain(getattr(clip, field))
        if not same:
            raise _refuse("correction_only",
                          "The site and scanner change only through a correction with a reason, which the clip's "
                          f"history keeps: POST /api/clips/{clip.pk}/correct-site/, or 'Correct site and scanner' "
                          "on the clip's page.", field)


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
    """Queue a failed extraction again, or one whose worker died (running with an expired lease).

    The job is asked for anew, so it is frozen anew: as the study's settings ask for it now.
    """
    retryable = Q(extraction_status=Clip.Extraction.FAILED) | EXTRACTION.expired(timezone.now())
    if not Clip.objects.filter(retryable, pk=clip.pk).update(extraction_status=Clip.Extraction.QUEUED,
                                                             extraction_error="", extraction_task_id="",
                                                             extraction_lease_expires_at=None,
                                                             **_extraction_job(frame_count=clip.frame_count)):
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


# --- frame extraction: what the worker does once it holds the clip ----------------------------------------

PROGRESS_EVERY_S = 1.0  # the page polls; a write per frame would cost a query per frame


def frames_directory(clip: Clip) -> str:
    return f"frames/{clip.sha256[:2]}/{clip.sha256}"


def frame_storage_name(clip: Clip, index: int) -> str:
    return f"{frames_directory(clip)}/frame_{index:05d}.png"


def _store(name: str, png: bytes) -> str:
    if default_storage.exists(name):
        default_storage.delete(name)  # deterministic names: a rerun replaces, never doubles
    return default_storage.save(name, ContentFile(png))


def _remove_orphan_frames(clip: Clip, keep: set[str]) -> int:
    """Delete the clip's frame files that no row refers to (left by a run that died); return how many."""
    directory = frames_directory(clip)
    try:
        _subdirectories, files = default_storage.listdir(directory)
    except FileNotFoundError:
        return 0
    orphans = [f"{directory}/{name}" for name in files if f"{directory}/{name}" not in keep]
    for name in orphans:
        default_storage.delete(name)
    return len(orphans)


def clip_frames_extract(*, clip: Clip, progress: Callable[[int, int], None] | None = None) -> int:
    """Extract the frames the clip's job asked for, streamed to storage; return how many the clip now has.

    Each frame goes decode -> PNG -> storage as it comes, so memory holds a few frames, never the clip. The
    rows appear in one transaction once every file is stored, replacing those of an earlier run (same
    index, same row), and files no row refers to are then deleted: a rerun after a worker died leaves
    exactly the frames asked for when the clip was queued, whatever the study settings say by then.
    The caller holds the clip (see clip_extract_frames) and records the outcome.
    """
    previous = {index: (name, sha256) for index, name, sha256 in clip.frames.values_list("index", "image", "sha256")}
    names: dict[int, str] = {}

    def store(frame: ExtractedFrame) -> None:  # on an encoder thread: storage writes overlap decoding
        name = frame_storage_name(clip, frame.index)
        if previous.get(frame.index) != (name, frame.sha256) or not default_storage.exists(name):
            name = _store(name, frame.png)  # an unchanged file stays, so a page showing it never misses it
        names[frame.index] = name

    from mlworker.media.extraction import extract_frames  # the PNG encoder (ISA-L) loads in the worker only

    n_frames = clip.extraction_frames_per_clip
    rows = []
    with tempfile.TemporaryDirectory(prefix="cts-clip-") as cache, \
            open_clip(local_path(clip.file.name, Path(cache)), **_limits()) as reader:
        Clip.objects.filter(pk=clip.pk).update(extraction_total=min(reader.info.frame_count, n_frames))
        for frame in extract_frames(reader, n_frames, progress=progress, store=store):
            rows.append(Frame(clip=clip, index=frame.index, timestamp_s=frame.timestamp_s, image=names[frame.index],
                              sha256=frame.sha256, width=frame.width, height=frame.height, channels=frame.channels))
    with transaction.atomic():
        Frame.objects.bulk_create(rows, update_conflicts=True, unique_fields=["clip", "index"],
                                  update_fields=["timestamp_s", "image", "sha256", "width", "height", "channels"])
        clip.frames.exclude(index__in=[row.index for row in rows]).delete()
    _remove_orphan_frames(clip, keep={row.image.name for row in rows})
    return len(rows)


def _progress_recorder(lease: Lease) -> Callable[[int, int], None]:
    """A progress callback writing done/total on the held clip row at most every PROGRESS_EVERY_S.

    It stops the extraction (LeaseLost) once another worker took the clip over, before any row is written.
    """
    last = time.monotonic()

    def progress(done: int, total: int) -> None:
        nonlocal last
        lease.check()
        if time.monotonic() - last >= PROGRESS_EVERY_S:
            lease.update(extraction_done=done, extraction_total=total)
            last = time.monotonic()

    return progress


EXTRACTION = JobKind(Clip, queue=lambda pk: _queue_extraction(pk), states=Clip.Extraction,
                     status="extraction_status", token="extraction_task_id", expires="extraction_lease_expires_at",
                     error="extraction_error", finished="extraction_finished_at")


def clip_extract_frames(*, clip_id: int) -> bool:
    """Extract the frames the clip was queued for; safe to run again (same frames, same names, no doubles).

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
            clip_frames_extract(clip=Clip.objects.get(pk=clip_id), progress=_progress_recorder(lease))
        except LeaseLost:
            return False
        except Exception as error:  # recorded for the UI, then re-raised for the worker log
            message = error.message if isinstance(error, ClipError) else f"{type(error).__name__}: {error}"
            lease.finish(Clip.Extraction.FAILED, extraction_error=message, extraction_finished_at=timezone.now())
            raise
        lease.finish(Clip.Extraction.DONE, extraction_done=F("extraction_total"),
                     extraction_finished_at=timezone.now())
    return True
