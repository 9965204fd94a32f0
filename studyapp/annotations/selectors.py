"""Agreement between annotators: ROI overlap per frame, and CSA from traced outlines."""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from itertools import combinations

import numpy as np
from django.contrib.auth import get_user_model
from django.db.models import F

from mlworker.stats import bland_altman, box_iou, box_iou_many, icc_2_1
from studyapp.protocol.models import StudySettings

from .models import CsaAdjudication, NerveOutline, RoiAdjudication, RoiAnnotation
from .services import ANCHORS

ALL_RATERS_PERM = "annotations.view_all_raters"


def sees_other_raters(user) -> bool:
    """Whether the user may see other raters' ROIs and outlines: those who adjudicate, or everyone unblinded."""
    return user.has_perm(ALL_RATERS_PERM) or not StudySettings.current().raters_blinded


def visible_annotations(queryset, *, user):
    """ROIs or outlines the user may see: a blinded rater's own only."""
    return queryset if sees_other_raters(user) else queryset.filter(annotator=user)


User = get_user_model()


def roi_agreement(*, clip_id: int | None = None) -> dict:
    """Mean pairwise IoU of confirmed ROIs on frames that two or more annotators marked.

    The database pairs the ROIs of a frame (each pair once, annotators in name order) and numpy computes
    every IoU at once: a study holds tens of thousands of ROIs and the dashboards read them all.
    """
    name = f"annotator__{User.USERNAME_FIELD}"
    other = f"frame__rois__annotator__{User.USERNAME_FIELD}"
    pairs_qs = RoiAnnotation.objects.filter(status__in=ANCHORS, frame__rois__status__in=ANCHORS,
                                            **{f"{other}__gt": F(name)})
    if clip_id is not None:
        pairs_qs = pairs_qs.filter(frame__clip_id=clip_id)
    rows = list(pairs_qs.order_by().values_list(
        "frame_id", "frame__clip_id", name, other, "x", "y", "w", "h",
        "frame__rois__x", "frame__rois__y", "frame__rois__w", "frame__rois__h"))
    if not rows:
        return {"frames_compared": 0, "mean_iou": None, "per_clip": [], "per_pair": []}
    frame_ids = np.array([r[0] for r in rows])
    clips = np.array([r[1] for r in rows])
    ious = box_iou_many([r[4:8] for r in rows], [r[8:12] for r in rows])
    # Each frame's value is the mean over its pairs; each clip's values are its frames'.
    frames, inverse = np.unique(frame_ids, return_inverse=True)
    frame_iou = np.bincount(inverse, weights=ious) / np.bincount(inverse)
    frame_clip = np.zeros(len(frames), dtype=clips.dtype)
    frame_clip[inverse] = clips
    per_clip = [{"clip": int(clip), "frames": int((frame_clip == clip).sum()),
                 "mean_iou": float(frame_iou[frame_clip == clip].mean()),
                 "min_iou": float(frame_iou[frame_clip == clip].min())} for clip in np.unique(frame_clip)]
    labels = np.array([f"{r[2]} vs {r[3]}" for r in rows])
    per_pair = [{"pair": str(pair), "frames": int((labels == pair).sum()),
                 "mean_iou": float(ious[labels == pair].mean())} for pair in np.unique(labels)]
    return {"frames_compared": len(frames), "mean_iou": float(frame_iou.mean()), "per_clip": per_clip,
            "per_pair": per_pair}


def csa_agreement() -> dict:
    """Inter-rater agreement of outline CSA per hand: ICC(2,1) with 95% CI, and Bland–Altman.

    Each annotator's value for a hand is the mean of their outlines on that hand's clips. The raters
    compared are those who outlined the most hands; hands outlined by all of them enter.
    """
    values: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for username, hand_id, area in NerveOutline.objects.order_by().values_list(
            f"annotator__{User.USERNAME_FIELD}", "frame__clip__hand_id", "area_mm2"):
        values[username][hand_id].append(area)
    raters = sorted(values, key=lambda name: (-len(values[name]), name))
    result = {"raters": raters, "hands": 0, "icc": None, "bland_altman": None,
              "note": "Needs outlines by at least two annotators on at least three of the same hands."}
    if len(raters) < 2:
        return result
    # Take the largest set of raters that still shares at least three hands.
    for k in range(len(raters), 1, -1):
        chosen = raters[:k]
        shared = sorted(set.intersection(*(set(values[r]) for r in chosen)))
        if len(shared) >= 3:
            break
    else:
        return result
    matrix = np.array([[np.mean(values[r][hand]) for r in chosen] for hand in shared])
    try:
        icc = icc_2_1(matrix)
    except ValueError as error:  # e.g. every hand rated alike: said on the page, not a server error
        return {**result, "raters": chosen, "hands": len(shared), "note": f"ICC not computed: {error}."}
    # Bland–Altman for every pair of raters (the first pair, most hands outlined, leads the page).
    pairs = []
    for i, j in combinations(range(len(chosen)), 2):
        ba = bland_altman(matrix[:, i], matrix[:, j])
        pairs.append({"raters": [chosen[i], chosen[j]], **{key: ba[key] for key in (
            "bias", "sd", "loa_low", "loa_high", "loa_low_ci", "loa_high_ci", "bias_ci_low", "bias_ci_high", "n")},
            "means": list(map(float, ba["means"])), "differences": list(map(float, ba["differences"]))})
    return {
        "raters": chosen, "hands": len(shared), "note": "",
        # F is infinite when raters agree perfectly (up to offsets); JSON has no infinity.
        "icc": {key: (icc[key] if key != "f_value" or math.isfinite(icc[key]) else None)
                for key in ("icc", "ci_low", "ci_high", "f_value", "df1", "df2", "p_value", "n", "k")},
        "bland_altman": pairs[0],
        "bland_altman_pairs": pairs,
    }


@dataclass(frozen=True)
class RoiDisagreement:
    """A frame where two raters' confirmed ROIs overlap less than the study's threshold."""

    frame_id: int
    clip_id: int
    index: int
    boxes: dict[str, tuple[int, int, int, int]]  # rater's username -> box
    min_iou: float
    adjudication: RoiAdjudication | None


@dataclass(frozen=True)
class CsaDisagreement:
    """A hand whose raters' outline CSA (each rater's mean on the hand) differ by more than the threshold."""

    hand_id: int
    values: dict[str, float]  # rater's username -> mean outline CSA (mm²)
    difference: float
    adjudication: CsaAdjudication | None


def roi_disagreements(*, threshold: float | None = None, frame_id: int | None = None) -> list[RoiDisagreement]:
    """Frames whose worst pair of raters' confirmed ROIs has IoU below `threshold` (default: the setting)."""
    if threshold is None:
        threshold = StudySettings.current().adjudication_iou_threshold
    rois = RoiAnnotation.objects.filter(status__in=ANCHORS).select_related("frame", "annotator").order_by(
        "frame__clip", "frame__index", "annotator__username")
    if frame_id is not None:
        rois = rois.filter(frame_id=frame_id)
    by_frame: dict[int, list[RoiAnnotation]] = defaultdict(list)
    for roi in rois:
        by_frame[roi.frame_id].append(roi)
    decisions = RoiAdjudication.objects.in_bulk(list(by_frame), field_name="frame_id")
    found = []
    for frame_id_, frame_rois in by_frame.items():
        if len(frame_rois) < 2:
            continue
        worst = min(box_iou(a.box, b.box) for a, b in combinations(frame_rois, 2))
        if worst < threshold:
            frame = frame_rois[0].frame
            found.append(RoiDisagreement(frame_id=frame_id_, clip_id=frame.clip_id, index=frame.index,
                                         boxes={r.annotator.get_username(): r.box for r in frame_rois},
                                         min_iou=float(worst), adjudication=decisions.get(frame_id_)))
    return found


def csa_disagreements(*, threshold: float | None = None) -> list[CsaDisagreement]:
    """Hands whose raters' mean outline CSA differ (largest minus smallest) by more than `threshold` mm²."""
    if threshold is None:
        threshold = StudySettings.current().adjudication_csa_difference_mm2
    values: dict[int, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for hand_id, rater, area in NerveOutline.objects.values_list("frame__clip__hand_id", "annotator__username",
                                                                "area_mm2"):
        values[hand_id][rater].append(area)
    decisions = CsaAdjudication.objects.in_bulk(list(values), field_name="hand_id")
    found = []
    for hand_id, per_rater in sorted(values.items()):
        if len(per_rater) < 2:
            continue
        means = {rater: float(np.mean(areas)) for rater, areas in sorted(per_rater.items())}
        difference = max(means.values()) - min(means.values())
        if difference > threshold:
            found.append(CsaDisagreement(hand_id=hand_id, values=means, difference=difference,
                                         adjudication=decisions.get(hand_id)))
    return found


def adjudicated_outline_csa(*, hand_ids) -> dict[int, float]:
    """The outline CSA the PI kept for adjudicated hands: the kept rater's latest outline, or the third value."""
    decisions = list(CsaAdjudication.objects.filter(hand_id__in=hand_ids))
    kept = {d.hand_id: d.chosen_annotator_id for d in decisions if d.chosen_annotator_id}
    values = {d.hand_id: d.csa_mm2 for d in decisions if not d.chosen_annotator_id}
    for hand_id, annotator_id, csa in (NerveOutline.objects.filter(frame__clip__hand_id__in=list(kept))
                                       .order_by("csa_measurement__measured_on", "csa_measurement_id")
                                       .values_list("frame__clip__hand_id", "annotator_id",
                                                    "csa_measurement__csa_mm2")):
        if kept[hand_id] == annotator_id:
            values[hand_id] = csa  # ordered, so the latest wins
    return values


def blinding_statement() -> dict:
    """What the agreement page says about how independent the ratings were."""
    settings = StudySettings.current()
    unblinded_since = (settings.history.filter(raters_blinded=False).order_by("history_date")
                       .values_list("history_date", flat=True).first())
    return {"blinded": settings.raters_blinded, "ever_unblinded": unblinded_since,
            "roi_adjudications": RoiAdjudication.objects.count(),
            "csa_adjudications": CsaAdjudication.objects.count()}
