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


def primary_annotator(clip: Clip) -> int | None:
    """The annotator whose ROIs define the crops: most confirmed ROIs on the clip, ties to the lowest id."""
    counts = Counter(RoiAnnotation.objects.filter(frame__clip=clip, status__in=ANCHORS)
                     .values_list("annotator_id", flat=True))
    if not counts:
        return None
    return min(counts, key=lambda user: (-counts[user], user))


def primary_rois(clip: Clip) -> dict[int, RoiAnnotation]:
    """The primary annotator's confirmed ROIs on a clip, by frame id, in frame order."""
    annotator = primary_annotator(clip)
    if annotator is None:
        return {}
    rois = (RoiAnnotation.objects.filter(frame__clip=clip, annotator_id=annotator, status__in=ANCHORS)
            .select_related("frame").order_by("frame__index"))
    return {roi.frame_id: roi for roi in rois}


def hand_entries(hand: Hand) -> list[dict]:
    """Manifest entries (one per frame) of a fully annotated hand; raises NotReady otherwise."""
    clips = list(hand.clips.all())
    if not clips:
        raise NotReady("no clip uploaded")
    entries = []
    for clip in clips:
        if clip.extraction_status != Clip.Extraction.DONE:
            raise NotReady(f"clip {clip.pk}: frame extraction is {clip.get_extraction_status_display().lower()}")
        frames = list(clip.frames.all())
        rois = primary_rois(clip)
        missing = [f.index for f in frames if f.pk not in rois]
        if not frames or missing:
            raise NotReady(f"clip {clip.pk}: {len(missing)} of {len(frames)} frames have no confirmed ROI")
        for frame in frames:
            roi = rois[frame.pk]
            entries.append({"hand": hand.pk, "participant": hand.participant_id, "clip": clip.pk,
                            "clip_sha256": clip.sha256, "frame": frame.pk, "index": frame.index,
                            "image": frame.image.name, "box": [roi.x, roi.y, roi.w, roi.h],
                            "annotator": roi.annotator_id})
    return entries


def hand_label(hand: Hand) -> int:
    if hand.exclusion_reason:
        raise NotReady(f"excluded ({hand.get_exclusion_reason_display().lower()})")
    if hand.group not in LABELS:
        raise NotReady(f"group is {hand.get_group_display().lower()}")
    return LABELS[hand.group]


def manifest_for(members: list[tuple[Hand, str]]) -> list[dict]:
    """The dataset a split implies: (hand, frame, crop box, label, subset) for every member frame."""
    entries = []
    for hand, subset in sorted(members, key=lambda m: m[0].pk):
        label = hand_label(hand)
        entries += [{**entry, "label": label, "subset": subset} for entry in hand_entries(hand)]
    return entries


def manifest_hash(entries: list[dict]) -> str:
    canonical = json.dumps(entries, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()
