"""Writes for ROI annotation and nerve outlines: geometry comes from mlworker.media, stale saves are refused."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from mlworker.media.geometry import crop_box, polygon_area_mm2
from studyapp.clips.models import Clip, Frame
from studyapp.cohort import services as cohort_services
from studyapp.cohort.models import CsaMeasurement
from studyapp.ops import services as ops_services
from studyapp.ops.models import BackgroundJob
from studyapp.protocol.models import StudySettings

from .models import CsaAdjudication, NerveOutline, RoiAdjudication, RoiAnnotation

ANCHORS = (RoiAnnotation.Status.KEYFRAME, RoiAnnotation.Status.CONFIRMED)
PROPAGATE_JOB = "roi_propagate"
PROPAGATION = ops_services.background_job_kind(PROPAGATE_JOB, "annotations.propagate_rois")


class StaleVersion(Exception):
    """The annotation changed since the client loaded it."""

    def __init__(self, current: RoiAnnotation | None):
        self.current = current
        who = current.history.first().history_user if current is not None and current.history.exists() else None
        super().__init__(
            "This ROI was changed by "
            f"{who or 'someone else'} since you loaded it (now version {current.version if current else 0}). "
            "Reload the frame to see the current ROI, then make your change again.")


def _spacing(clip: Clip) -> tuple[float, float]:
    if clip.spacing_mm is None:
        raise ValidationError({"clip": ValidationError(
            "This clip has no pixel spacing yet, so the 15 mm ROI can't be sized. Calibrate it first: click two "
            "depth-scale marks a known distance apart, or enter the spacing.", code="missing_spacing")})
    return clip.spacing_mm


def roi_box(*, frame: Frame, center_x: float, center_y: float) -> tuple[int, int, int, int]:
    """The study's square ROI (crop size in mm) around a point, clamped inside the frame."""
    try:
        return crop_box((center_x, center_y), size_mm=StudySettings.current().crop_size_mm,
                        spacing_mm=_spacing(frame.clip), frame_size=(frame.width, frame.height))
    except ValueError as error:
        raise ValidationError({"center_x": ValidationError(str(error), code="crop_outside")}) from None


def _annotated(clip_id: int) -> None:
    """A hand whose ROIs are now all confirmed gets its blinded prospective prediction (when a model is frozen)."""
    from studyapp.prospective.services import prospective_clip_annotated  # it reads annotations: imported late

    prospective_clip_annotated(clip_id=clip_id)


@transaction.atomic
def roi_save(*, frame: Frame, annotator, center_x: float, center_y: float, status: str = RoiAnnotation.Status.KEYFRAME,
             expected_version: int | None = None, method: str = RoiAnnotation.Method.MANUAL) -> RoiAnnotation:
    """Place or move an annotator's ROI on a frame; `expected_version` must match the stored one."""
    if status not in RoiAnnotation.Status.values:
        raise ValidationError({"status": ValidationError(f"Unknown status '{status}'.", code="invalid")})
    if not (0 <= center_x < frame.width and 0 <= center_y < frame.height):
        raise ValidationError({"center_x": ValidationError("The ROI centre must be inside the frame.",
                                                           code="outside_frame")})
    x, y, w, h = roi_box(frame=frame, center_x=center_x, center_y=center_y)
    current = RoiAnnotation.objects.select_for_update().filter(frame=frame, annotator=annotator).first()
    if current is None:
        if expected_version not in (None, 0):
            raise StaleVersion(None)
        try:
            with transaction.atomic():  # a savepoint: the rest of the transaction survives a lost race
                created = RoiAnnotation.objects.create(frame=frame, annotator=annotator, x=x, y=y, w=w, h=h,
                                                       status=status, method=method)
            _annotated(frame.clip_id)
            return created
        except IntegrityError:
            # The same annotator's other request (a second tab, a double click) created it first.
            raced = RoiAnnotation.objects.filter(frame=frame, annotator=annotator).first()
            if raced is None:
                raise
            raise StaleVersion(raced) from None
    if expected_version != current.version:
        raise StaleVersion(current)
    current.x, current.y, current.w, current.h = x, y, w, h
    current.status, current.method, current.score = status, method, None
    current.version += 1
    current.save()
    _annotated(frame.clip_id)
    return current


@transaction.atomic
def roi_set_status(*, roi: RoiAnnotation, status: str, expected_version: int) -> RoiAnnotation:
    current = RoiAnnotation.objects.select_for_update().get(pk=roi.pk)
    if expected_version != current.version:
        raise StaleVersion(current)
    current.status = status
    current.version += 1
    current.save()
    _annotated(current.frame.clip_id)
    return current


@transaction.atomic
def roi_delete(*, roi: RoiAnnotation, expected_version: int) -> None:
    current = RoiAnnotation.objects.select_for_update().get(pk=roi.pk)
    if expected_version != current.version:
        raise StaleVersion(current)
    current.delete()


def roi_propagation_active(*, clip: Clip, annotator) -> BackgroundJob | None:
    """The annotator's propagation of the clip that is queued or running, if any (the page follows it)."""
    return BackgroundJob.objects.filter(kind=PROPAGATE_JOB, key=f"clip={clip.pk}:annotator={annotator.pk}",
                                        status__in=ops_services.ACTIVE).first()


def roi_propagate_queue(*, clip: Clip, annotator) -> BackgroundJob:
    """Queue the proposal of this annotator's ROI on the clip's other frames (a worker decodes and matches).

    While one is queued or running for the clip and annotator, asking again returns that one.
    """
    if not RoiAnnotation.objects.filter(frame__clip=clip, annotator=annotator, status__in=ANCHORS).exists():
        raise ValidationError({"clip": ValidationError("Place the ROI on at least one frame first (a keyframe).",
                                                       code="no_keyframe")})
    from .tasks import propagate_rois

    return ops_services.background_job_queue(
        kind=PROPAGATE_JOB, key=f"clip={clip.pk}:annotator={annotator.pk}",
        params={"clip": clip.pk, "annotator": annotator.pk}, created_by=annotator, task=propagate_rois,
        total=clip.frames.count())


@transaction.atomic
def roi_confirm_all(*, clip: Clip, annotator) -> int:
    """Confirm every proposed ROI of this annotator on the clip (each save is audited)."""
    confirmed = 0
    for roi in RoiAnnotation.objects.select_for_update().filter(frame__clip=clip, annotator=annotator,
                                                                status=RoiAnnotation.Status.PROPOSED):
        roi.status = RoiAnnotation.Status.CONFIRMED
        roi.version += 1
        roi.save()
        confirmed += 1
    _annotated(clip.pk)
    return confirmed


@transaction.atomic
def outline_create(*, frame: Frame, annotator, points: list[list[float]]) -> NerveOutline:
    """Store a traced nerve outline and its area as a CSA measurement of the hand."""
    spacing = _spacing(frame.clip)
    try:
        coords = [(float(x), float(y)) for x, y in points]
    except (TypeError, ValueError):
        raise ValidationError({"points": ValidationError("Give the outline as [[x, y], ...] pixel points.",
                                                         code="invalid")}) from None
    if any(not (0 <= x <= frame.width and 0 <= y <= frame.height) for x, y in coords):
        raise ValidationError({"points": ValidationError("Every outline point must lie inside the frame.",
                                                         code="outside_frame")})
    try:
        area = polygon_area_mm2(coords, spacing)
    except ValueError as error:
        raise ValidationError({"points": ValidationError(str(error), code="bad_polygon")}) from None
    measurement = cohort_services.csa_measurement_create(
        hand=frame.clip.hand, csa_mm2=round(area, 2), site=CsaMeasurement.Site.CARPAL_TUNNEL_INLET,
        measured_by=annotator, method=CsaMeasurement.Method.OUTLINE)
    return NerveOutline.objects.create(frame=frame, annotator=annotator, points=[list(p) for p in coords],
                                       area_mm2=area, csa_measurement=measurement)


@transaction.atomic
def outline_delete(*, outline: NerveOutline) -> None:
    measurement = outline.csa_measurement
    outline.delete()
    cohort_services.csa_measurement_delete(measurement=measurement)


def _decide(model, lookup: dict, *, decided_by, note: str, **decision):
    """Create or change the one adjudication of `lookup`, validated, with the decider in its audit trail."""
    current = model.objects.select_for_update().filter(**lookup).first() or model(**lookup)
    for name, value in {**decision, "note": note, "decided_by": decided_by}.items():
        setattr(current, name, value)
    current.full_clean()
    current._history_user = decided_by
    current.save()
    return current


@transaction.atomic
def roi_adjudicate(*, frame: Frame, decided_by, chosen_annotator=None, center: tuple[float, float] | None = None,
                   note: str = "") -> RoiAdjudication:
    """Keep one rater's confirmed ROI on the frame for the dataset, or a third box around `center` (pixels)."""
    if (chosen_annotator is None) == (center is None):
        raise ValidationError(ValidationError("Keep one rater's ROI or place a third box, not both or neither.",
                                              code="rater_or_box"))
    box = {"x": None, "y": None, "w": None, "h": None}
    if chosen_annotator is not None:
        if not RoiAnnotation.objects.filter(frame=frame, annotator=chosen_annotator, status__in=ANCHORS).exists():
            raise ValidationError({"chosen_annotator": ValidationError(
                f"{chosen_annotator.get_username()} has no confirmed ROI on this frame to keep.", code="no_roi")})
    else:
        cx, cy = center
        if not (0 <= cx < frame.width and 0 <= cy < frame.height):
            raise ValidationError({"center_x": ValidationError("The third box's centre must be inside the frame.",
                                                               code="outside_frame")})
        box = dict(zip("xywh", roi_box(frame=frame, center_x=cx, center_y=cy)))
    return _decide(RoiAdjudication, {"frame": frame}, decided_by=decided_by, note=note,
                   chosen_annotator=chosen_annotator, **box)


@transaction.atomic
def csa_adjudicate(*, hand, decided_by, chosen_annotator=None, csa_mm2: float | None = None,
                   note: str = "") -> CsaAdjudication:
    """Keep one rater's outline CSA of the hand, or a third value (mm²)."""
    if (chosen_annotator is None) == (csa_mm2 is None):
        raise ValidationError(ValidationError("Keep one rater's CSA or give a third value, not both or neither.",
                                              code="rater_or_value"))
    if chosen_annotator is not None and not NerveOutline.objects.filter(
            frame__clip__hand=hand, annotator=chosen_annotator).exists():
        raise ValidationError({"chosen_annotator": ValidationError(
            f"{chosen_annotator.get_username()} has not outlined this hand.", code="no_outline")})
    if csa_mm2 is not None and not csa_mm2 > 0:
        raise ValidationError({"csa_mm2": ValidationError("A CSA is a positive area in mm².", code="invalid")})
    return _decide(CsaAdjudication, {"hand": hand}, decided_by=decided_by, note=note,
                   chosen_annotator=chosen_annotator, csa_mm2=csa_mm2)
