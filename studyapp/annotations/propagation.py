"""ROI propagation on the worker: read the clip's frames, match the nerve, write proposals. Worker-only (OpenCV).

Decoding and matching run outside any transaction; the writes then lock the annotator's ROIs briefly and leave
alone every frame the annotator changed since the frames were read (its ROI version moved, or it appeared or
went), so a propagation never overwrites work done while it ran.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from mlworker.media.propagation import Proposal, propagate
from studyapp.clips.models import Clip, Frame
from studyapp.ops import services as ops_services

from .models import RoiAnnotation
from .services import ANCHORS, PROPAGATION

METHODS = {"interpolated": RoiAnnotation.Method.INTERPOLATED, "tracked": RoiAnnotation.Method.TRACKED}
PROGRESS_EVERY = 10  # frames read between progress writes


@dataclass(frozen=True)
class Seen:
    """An annotator's ROI on a frame as it was when propagation read the frames."""

    pk: int
    version: int
    status: str


def load_grey(frame: Frame) -> np.ndarray:
    with frame.image.open("rb") as handle:
        data = np.frombuffer(handle.read(), np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_GRAYSCALE)
    if image is None:
        raise ValidationError(f"Frame {frame.index} of clip {frame.clip_id} could not be read.", code="unreadable")
    return image


def roi_propagate(*, clip: Clip, annotator, progress: Callable[[int, int, str], None] | None = None) -> dict:
    """Propose the annotator's ROI on every frame without their keyframe or confirmed ROI.

    Between keyframes the box is interpolated (and refined by template matching); before the first and after
    the last keyframe it is tracked. Returns {"proposed": n, "kept": [frame indexes the annotator changed
    meanwhile, left as they are]}.
    """
    frames = list(clip.frames.order_by("index"))
    seen = {roi.frame.index: (Seen(roi.pk, roi.version, roi.status), roi.box)
            for roi in RoiAnnotation.objects.filter(frame__clip=clip, annotator=annotator).select_related("frame")}
    anchors = {index: box for index, (state, box) in seen.items() if state.status in ANCHORS}
    if not anchors:
        raise ValidationError({"clip": ValidationError("Place the ROI on at least one frame first (a keyframe).",
                                                       code="no_keyframe")})
    images = {}
    for done, frame in enumerate(frames, start=1):
        images[frame.index] = load_grey(frame)
        if progress and (done % PROGRESS_EVERY == 0 or done == len(frames)):
            progress(done, len(frames), f"Read {done} of {len(frames)} frames")
    if progress:
        progress(len(frames), len(frames), "Matching the nerve across frames")
    proposals = propagate(images, anchors)
    return _write(frames, annotator, proposals, {index: state for index, (state, _) in seen.items()})


@transaction.atomic
def _write(frames: list[Frame], annotator, proposals: dict[int, Proposal], seen: dict[int, Seen]) -> dict:
    by_index = {frame.index: frame for frame in frames}
    current = {roi.frame.index: roi for roi in RoiAnnotation.objects.select_for_update().filter(
        frame__in=frames, annotator=annotator).select_related("frame")}
    proposed, kept = 0, []
    for index, proposal in proposals.items():
        before, roi = seen.get(index), current.get(index)
        if before is not None and before.status in ANCHORS:
            continue
        if (before and (before.pk, before.version)) != (roi and (roi.pk, roi.version)):
            kept.append(index)  # placed, moved or deleted by the annotator while the frames were read
            continue
        if roi is None:
            roi = RoiAnnotation(frame=by_index[index], annotator=annotator)
        else:
            roi.version += 1
        roi.x, roi.y, roi.w, roi.h = proposal.box
        roi.status, roi.score = RoiAnnotation.Status.PROPOSED, proposal.score
        roi.method = METHODS.get(proposal.method, RoiAnnotation.Method.TRACKED)
        roi._history_user = annotator  # audited as the annotator's, as when it ran in their request
        try:
            with transaction.atomic():
                roi.save()
        except IntegrityError:  # the annotator placed one on this frame after our lock was taken
            kept.append(index)
            continue
        proposed += 1
    return {"proposed": proposed, "kept": sorted(kept)}


def propagation_run(*, job_id: int, worker: str = ""):
    """Run a queued propagation job, recording progress, result or error on its row. A second delivery is dropped."""
    return ops_services.background_job_run(PROPAGATION, job_id, _propagate, worker=worker)


def _propagate(job, lease):
    job_id = job.pk

    def progress(done: int, total: int, message: str) -> None:
        ops_services.background_job_progress(lease, done=done, total=total, message=message)

    try:
        clip = Clip.objects.get(pk=job.params["clip"])
        annotator = get_user_model().objects.get(pk=job.params["annotator"])
        result = roi_propagate(clip=clip, annotator=annotator, progress=progress)
    except ValidationError as error:
        return ops_services.background_job_fail(job_id, lease=lease, error=" ".join(error.messages))
    except (Clip.DoesNotExist, get_user_model().DoesNotExist):
        return ops_services.background_job_fail(job_id, lease=lease, error="The clip or the annotator no longer exists.")
    except Exception as error:
        ops_services.background_job_fail(job_id, lease=lease, error=f"Propagation stopped: {error}. Try again; if it fails "
                                                       "again, tell the study's administrator.")
        raise
    message = f"Proposed the ROI on {result['proposed']} frame{'' if result['proposed'] == 1 else 's'}."
    if result["kept"]:
        message += f" Kept your own changes on {len(result['kept'])} frame{'' if len(result['kept']) == 1 else 's'}."
    return ops_services.background_job_finish(lease, result=result, message=message)
