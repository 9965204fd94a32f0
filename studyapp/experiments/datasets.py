"""What a hand contributes to training: its extracted frames and confirmed ROIs, as manifest entries.

The ROIs are the primary rater's (a study setting: a named rater, or the one with the most confirmed ROIs on
each clip); on a frame the PI adjudicated, the kept rater's ROI or the PI's third box.
"""

from __future__ import annotations

import gc
import hashlib
import json
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import SimpleNamespace

from django.db import connection

from studyapp.annotations.models import RoiAdjudication, RoiAnnotation
from studyapp.annotations.services import ANCHORS
from studyapp.clips.models import Clip, Frame
from studyapp.cohort.models import Hand
from studyapp.protocol.models import StudySettings
from studyapp.sites.models import Site

LABELS = {"control": 0, "cts": 1}


class NotReady(Exception):
    """A hand that can't enter a split yet; the message says why."""


def _primary(annotators: list[int], *, named: int | None = None) -> int | None:
    """The named primary rater when the study names one; else most confirmed ROIs on the clip, ties to the lowest id."""
    if named is not None:
        return named
    counts = Counter(annotators)
    return min(counts, key=lambda user: (-counts[user], user)) if counts else None


def _named_primary() -> int | None:
    settings = StudySettings.current()
    return settings.primary_rater_id if settings.primary_rater_rule == StudySettings.PrimaryRater.NAMED else None


def primary_annotator(clip: Clip) -> int | None:
    """The annotator whose ROIs define the crops (the study setting's rule)."""
    return _primary(list(RoiAnnotation.objects.filter(frame__clip=clip, status__in=ANCHORS)
                         .values_list("annotator_id", flat=True)), named=_named_primary())


def _adjudicated(rois: list[RoiAnnotation], primary: int | None,
                 adjudications: list[RoiAdjudication]) -> dict[int, RoiAnnotation]:
    """The primary rater's ROIs by frame id, where the PI adjudicated a frame their decision instead.

    `rois` are the clip's confirmed ROIs of every rater (frame loaded). A kept rater's ROI that is no longer
    confirmed leaves the frame without one (not ready) rather than falling back silently to the primary.
    """
    by_frame = {roi.frame_id: roi for roi in rois if roi.annotator_id == primary}
    by_rater = {(roi.frame_id, roi.annotator_id): roi for roi in rois}
    for decision in adjudications:
        by_frame.pop(decision.frame_id, None)
        if decision.chosen_annotator_id is not None:
            kept = by_rater.get((decision.frame_id, decision.chosen_annotator_id))
            if kept is not None:
                by_frame[decision.frame_id] = kept
        else:  # the PI's third box: an unsaved ROI of nobody, so crops and predictions read it alike
            by_frame[decision.frame_id] = RoiAnnotation(
                frame=decision.frame, annotator_id=None, x=decision.x,
                y=decision.y, w=decision.w, h=decision.h, status=RoiAnnotation.Status.CONFIRMED)
    return dict(sorted(by_frame.items(), key=lambda item: item[1].frame.index))


def primary_rois(clip: Clip) -> dict[int, RoiAnnotation]:
    """The ROIs that define a clip's crops, by frame id in frame order: the primary rater's, as adjudicated."""
    rois = list(RoiAnnotation.objects.filter(frame__clip=clip, status__in=ANCHORS).select_related("frame")
                .order_by("frame__index", "pk"))
    primary = _primary([roi.annotator_id for roi in rois], named=_named_primary())
    adjudications = list(RoiAdjudication.objects.filter(frame__clip=clip).select_related("frame"))
    return _adjudicated(rois, primary, adjudications)


@contextmanager
def _many_records() -> Iterator[None]:
    """Pause the cycle collector while tens of thousands of small records are built.

    Every 700 new containers start a collection, and the older generations' pauses scan the whole heap: at
    study scale (10,000 frames, 20,000 ROIs) that was about half of reading them. Reference counting still
    frees these records; the collector runs again at its next threshold after the block.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _entries(hand: Hand, clips: list[Clip], rois_of_clip) -> list[dict]:
    """Manifest entries of a hand from its clips (frames loaded) and `rois_of_clip(clip)` -> {frame id: ROI}."""
    with _many_records():
        return _built_entries(hand, clips, rois_of_clip)


def _built_entries(hand: Hand, clips: list[Clip], rois_of_clip) -> list[dict]:
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


Annotations = tuple[dict[int, list], Callable[[Clip], dict[int, RoiAnnotation]]]


def load_annotations(hand_ids) -> Annotations:
    """The clips (frames loaded) of these hands by hand, and `rois_of_clip(clip)` -> {frame id: crop-defining ROI}.

    Four queries for any number of hands: frames, clips, confirmed ROIs and adjudications are loaded in bulk
    (plus the study setting naming the primary rater).
    """
    # Rows are read as values, not model instances: at study scale (10,000 frames, 20,000 ROIs) building the
    # instances took seconds. The records carry the attributes _entries and _adjudicated read.
    with _many_records():
        return _loaded_annotations(sorted(set(hand_ids)))


def _loaded_annotations(hand_ids: list[int]) -> Annotations:
    frames: dict[int, list[SimpleNamespace]] = {}
    frame_by_id: dict[int, SimpleNamespace] = {}
    for row in Frame.objects.filter(clip__hand_id__in=hand_ids).values("pk", "clip_id", "index", "image", "sha256"):
        frame = SimpleNamespace(pk=row["pk"], index=row["index"], image=SimpleNamespace(name=row["image"]),
                                sha256=row["sha256"])
        frames.setdefault(row["clip_id"], []).append(frame)
        frame_by_id[row["pk"]] = frame
    clips: dict[int, list] = {}
    for row in Clip.objects.filter(hand_id__in=hand_ids).values("pk", "hand_id", "sha256", "extraction_status",
                                                                 "site__code", "scanner_manufacturer", "scanner_model"):
        clips.setdefault(row["hand_id"], []).append(_clip_record(row, frames.get(row["pk"], [])))
    confirmed: dict[int, list] = {}
    for row in RoiAnnotation.objects.filter(frame__clip__hand_id__in=hand_ids, status__in=ANCHORS).order_by(
            "frame__index", "pk").values("frame_id", "frame__clip_id", "annotator_id", "x", "y", "w", "h", "status"):
        confirmed.setdefault(row.pop("frame__clip_id"), []).append(
            SimpleNamespace(**row, frame=frame_by_id[row["frame_id"]]))
    adjudications: dict[int, list[RoiAdjudication]] = {}
    for decision in RoiAdjudication.objects.filter(frame__clip__hand_id__in=hand_ids).select_related("frame"):
        adjudications.setdefault(decision.frame.clip_id, []).append(decision)
    named = _named_primary()

    def rois_of_clip(clip: Clip) -> dict[int, RoiAnnotation]:
        rois = confirmed.get(clip.pk, [])
        primary = _primary([roi.annotator_id for roi in rois], named=named)
        return _adjudicated(rois, primary, adjudications.get(clip.pk, []))

    return clips, rois_of_clip


def _clip_record(row: dict, frames: list) -> SimpleNamespace:
    status = row["extraction_status"]
    return SimpleNamespace(pk=row["pk"], hand_id=row["hand_id"], sha256=row["sha256"], extraction_status=status,
                           site=row["site__code"] or "",
                           scanner=scanner_name(row["scanner_manufacturer"], row["scanner_model"]),
                           get_extraction_status_display=lambda: Clip.Extraction(status).label,
                           frames=SimpleNamespace(all=lambda: frames))


def loaded_hand_entries(hand: Hand, annotations: Annotations) -> list[dict]:
    """hand_entries from annotations loaded in bulk (load_annotations), without a query."""
    clips, rois_of_clip = annotations
    return _entries(hand, clips.get(hand.pk, []), rois_of_clip)


def manifest_for(members: list[tuple[Hand, str]], *, annotations: Annotations | None = None,
                 domains: bool = False) -> list[dict]:
    """The dataset a split implies: (hand, frame, crop box, label, subset) for every member frame.

    With `domains` (external splits) each entry also records its clip's site and scanner, so a later
    correction of either shows as a change of the locked data.
    A fixed number of queries for any number of hands (load_annotations), none when `annotations` of the
    members' hands are given, so the experiments page can check every locked split.
    """
    annotations = annotations or load_annotations(hand.pk for hand, _ in members)
    clip_domains = {clip.pk: {"site": clip.site, "scanner": clip.scanner}
                    for clips in annotations[0].values() for clip in clips} if domains else {}
    entries = []
    with _many_records():
        for hand, subset in sorted(members, key=lambda m: m[0].pk):
            label = hand_label(hand)
            entries += [{**entry, "label": label, "subset": subset, **clip_domains.get(entry["clip"], {})}
                        for entry in loaded_hand_entries(hand, annotations)]
    return entries


# --- input fingerprints ------------------------------------------------------------------------------------
# What the manifest of a set of hands is built from, read above: the hands (participant, group, exclusion), their
# clips (which clips, SHA-256, extraction status, site code and scanner: external splits record them), the clips' frames (id, index, image name, SHA-256), the
# confirmed ROIs of every rater (the primary rater is the one with most of them unless the study names one), the
# PI's adjudications and the named primary rater. A hand's fingerprint hashes all of these rows in the
# database; equal fingerprints mean equal inputs and so an equal manifest, without building 10,000 entries.
# Bump FINGERPRINT_VERSION whenever the manifest reads another column: fingerprints of the older rule then
# no longer match, and the full comparison runs (and records the new fingerprint) once.
FINGERPRINT_VERSION = 2
# The entry fields the fingerprint covers (with the columns they come from, in _fingerprint_sql); a test
# fails when manifest entries carry another, until its column is hashed too.
FINGERPRINTED_ENTRY_KEYS = frozenset({"hand", "participant", "clip", "clip_sha256", "frame", "index", "image",
                                      "image_sha256", "box", "annotator", "label", "subset", "site", "scanner"})


def _fingerprint_sql(n_hands: int, n_anchors: int) -> str:
    """One statement (one snapshot of the tables, on any backend) listing every row a set of hands' manifest is
    built from: (hand, kind, row id, up to seven values as text), in a fixed order."""
    q = connection.ops.quote_name
    hand, clip, frame = q(Hand._meta.db_table), q(Clip._meta.db_table), q(Frame._meta.db_table)
    roi, decision, site = q(RoiAnnotation._meta.db_table), q(RoiAdjudication._meta.db_table), q(Site._meta.db_table)
    hands = ", ".join(["%s"] * n_hands)
    anchors = ", ".join(["%s"] * n_anchors)

    def text(*columns: str) -> str:  # seven text columns, NULL-padded: NULL stays apart from ''
        cast = [f"CAST({column} AS TEXT)" for column in columns]
        return ", ".join(cast + ["NULL"] * (7 - len(cast)))

    return f"""
    SELECT h.id, 'h', h.id, {text("h.participant_id", "h." + q("group"), "h.exclusion_reason")}
    FROM {hand} h WHERE h.id IN ({hands})
    UNION ALL
    SELECT c.hand_id, 'c', c.id, {text("c.sha256", "c.extraction_status", "s.code", "c.scanner_manufacturer",
                                        "c.scanner_model")}
    FROM {clip} c LEFT JOIN {site} s ON s.id = c.site_id WHERE c.hand_id IN ({hands})
    UNION ALL
    SELECT c.hand_id, 'f', f.id, {text("f.clip_id", "f." + q("index"), "f.image", "f.sha256")}
    FROM {frame} f JOIN {clip} c ON c.id = f.clip_id WHERE c.hand_id IN ({hands})
    UNION ALL
    SELECT c.hand_id, 'r', r.id, {text("r.frame_id", "r.annotator_id", "r.x", "r.y", "r.w", "r.h")}
    FROM {roi} r JOIN {frame} f ON f.id = r.frame_id JOIN {clip} c ON c.id = f.clip_id
    WHERE c.hand_id IN ({hands}) AND r.status IN ({anchors})
    UNION ALL
    SELECT c.hand_id, 'a', a.id, {text("a.frame_id", "a.chosen_annotator_id", "a.x", "a.y", "a.w", "a.h")}
    FROM {decision} a JOIN {frame} f ON f.id = a.frame_id JOIN {clip} c ON c.id = f.clip_id
    WHERE c.hand_id IN ({hands})
    ORDER BY 1, 2, 3"""


def hand_fingerprints(hand_ids) -> dict[int, str]:
    """Per hand, the SHA-256 of every row its manifest entries are built from, in one query for any number of hands.

    A hand that no longer exists is absent from the answer.
    """
    hand_ids = sorted(set(hand_ids))
    if not hand_ids:
        return {}
    anchors = [str(status) for status in ANCHORS]
    rows_of: dict[int, list] = {}
    with connection.cursor() as cursor:
        cursor.execute(_fingerprint_sql(len(hand_ids), len(anchors)), [*hand_ids * 4, *anchors, *hand_ids])
        for row in cursor.fetchall():
            rows_of.setdefault(row[0], []).append(row[1:])
    # repr of tuples of text, ints and None is exact and unambiguous (strings quoted, None apart from '').
    return {hand: hashlib.sha256(repr(rows).encode()).hexdigest() for hand, rows in rows_of.items()}


def inputs_fingerprint(members: list[tuple[int, str]], hands: dict[int, str], named: int | None) -> str:
    """The fingerprint of a split's inputs: its members (hand id, subset), their hands' fingerprints
    (hand_fingerprints) and the named primary rater (`_named_primary()`).

    Equal fingerprints mean the split's manifest_for gives the same entries (or the same NotReady reason).
    """
    canonical = json.dumps({"version": FINGERPRINT_VERSION, "named_primary": named,
                            "members": sorted([hand, subset, hands.get(hand)] for hand, subset in members)},
                           separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def named_primary() -> int | None:
    """The primary rater the study names, if it names one (None: the rater with most ROIs, per clip)."""
    return _named_primary()


def manifest_hands(entries: list[dict]) -> list[dict]:
    """Per hand of a manifest, what launch estimates and counts need: {hand, participant, label, subset, entries}."""
    hands: dict[int, dict] = {}
    for entry in entries:
        row = hands.setdefault(entry["hand"], {"hand": entry["hand"], "participant": entry["participant"],
                                               "label": entry["label"], "subset": entry["subset"], "entries": 0})
        row["entries"] += 1
    return list(hands.values())


def scanner_name(manufacturer: str, model: str) -> str:
    """A scanner as external splits name it: manufacturer and model ("" when neither is recorded)."""
    return " ".join(part.strip() for part in (manufacturer, model) if part and part.strip())


def hand_domains(hand_ids, *, domain: str) -> dict[int, tuple[str, ...]]:
    """Each hand's clips' sites (codes) or scanners, one per clip, "" for a clip that records none (one query)."""
    out: dict[int, list[str]] = {}
    for hand_id, site, manufacturer, model in Clip.objects.filter(hand_id__in=list(hand_ids)).order_by("pk") \
            .values_list("hand_id", "site__code", "scanner_manufacturer", "scanner_model"):
        out.setdefault(hand_id, []).append((site or "") if domain == "site" else scanner_name(manufacturer, model))
    return {hand: tuple(values) for hand, values in out.items()}


def manifest_hash(entries: list[dict]) -> str:
    canonical = json.dumps(entries, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()
