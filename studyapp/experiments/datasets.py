"""What a hand contributes to training: its extracted frames and confirmed ROIs, as manifest entries."""

from __future__ import annotations

import hashlib
import json
from collections import Counter

from studyapp.annotations.models import RoiAnnotation
from studyapp.annotations.services import ANCHORS
from studyapp.clips.models import Clip
from studyapp.cohort.models import Hand

LABELS = {"control": 0, "cts": 1}


class NotReady(Exception):
    """A hand that can't enter a split yet; the message says why."""


def _primary(annotators: list[int]) -> int | None:
    """Most confirmed ROIs on the clip wins, ties to the lowest id."""
    counts = Counter(annotators)
    return min(counts, key=lambda user: (-counts[user], user)) if counts else None


def primary_annotator(clip: Clip) -> int | None:
    """The annotator whose ROIs define the crops: most confirmed ROIs on the clip, ties to the lowest id."""
    return _primary(list(RoiAnnotation.objects.filter(frame__clip=clip, status__in=ANCHORS)
                         .values_list("annotator_id", flat=True)))


def primary_rois(clip: Clip) -> dict[int, RoiAnnotation]:
    """The primary annotator's confirmed ROIs on a clip, by frame id, in frame order."""
    annotator = primary_annotator(clip)
    if annotator is None:
        return {}
    rois = (RoiAnnotation.objects.filter(frame__clip=clip, annotator_id=annotator, status__in=ANCHORS)
            .select_related("frame").order_by("frame__index"))
    return {roi.frame_id: roi for roi in rois}


def _entries(hand: Hand, clips: list[Clip], rois_of_clip) -> list[dict]:
    """Manifest entries of a hand from its clips (frames loaded) and `rois_of_clip(clip)` -> {frame id: ROI}."""
    if not clips:
        raise NotReady("no clip uploaded")
    entries = []
    for clip in clips:
        if clip.extraction_status != Clip.Extraction.DONE:
            raise NotReady(f"clip {clip.pk}: frame extraction is {clip.get_extraction_status_display().lower()}")
        frames = list(clip.frames.all())
        rois = rois_of_clip(clip)
        missing = [f.index for f in frames if f.pk not in rois]
        if not frames or missing:
            raise NotReady(f"clip {clip.pk}: {len(missing)} of {len(frames)} frames have no confirmed ROI")
        for frame in frames:
            roi = rois[frame.pk]
            entries.append({"hand": hand.pk, "participant": hand.participant_id, "clip": clip.pk,
                            "clip_sha256": clip.sha256, "frame": frame.pk, "index": frame.index,
                            "image": frame.image.name, "image_sha256": frame.sha256,
                            "box": [roi.x, roi.y, roi.w, roi.h], "annotator": roi.annotator_id})
    return entries


def hand_entries(hand: Hand) -> list[dict]:
    """Manifest entries (one per frame) of a fully annotated hand; raises NotReady otherwise."""
    return _entries(hand, list(hand.clips.all()), primary_rois)


def hand_label(hand: Hand) -> int:
    if hand.exclusion_reason:
        raise NotReady(f"excluded ({hand.get_exclusion_reason_display().lower()})")
    if hand.group not in LABELS:
        raise NotReady(f"group is {hand.get_group_display().lower()}")
    return LABELS[hand.group]


def manifest_for(members: list[tuple[Hand, str]]) -> list[dict]:
    """The dataset a split implies: (hand, frame, crop box, label, subset) for every member frame.

    A fixed number of queries for any number of hands (clips, frames and ROIs are loaded in bulk), so
    the experiments page can check every locked split.
    """
    hand_ids = [hand.pk for hand, _ in members]
    clips: dict[int, list[Clip]] = {}
    for clip in Clip.objects.filter(hand_id__in=hand_ids).prefetch_related("frames"):
        clips.setdefault(clip.hand_id, []).append(clip)
    confirmed: dict[int, list[RoiAnnotation]] = {}
    for roi in RoiAnnotation.objects.filter(frame__clip__hand_id__in=hand_ids, status__in=ANCHORS).select_related(
            "frame").order_by("frame__index", "pk"):
        confirmed.setdefault(roi.frame.clip_id, []).append(roi)

    def rois_of_clip(clip: Clip) -> dict[int, RoiAnnotation]:
        rois = confirmed.get(clip.pk, [])
        annotator = _primary([roi.annotator_id for roi in rois])
        return {roi.frame_id: roi for roi in rois if roi.annotator_id == annotator}

    entries = []
    for hand, subset in sorted(members, key=lambda m: m[0].pk):
        label = hand_label(hand)
        entries += [{**entry, "label": label, "subset": subset}
                    for entry in _entries(hand, clips.get(hand.pk, []), rois_of_clip)]
    return entries


def manifest_hash(entries: list[dict]) -> str:
    canonical = json.dumps(entries, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()
