"""Agreement between annotators: ROI overlap per frame, and CSA from traced outlines."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
from django.contrib.auth import get_user_model
from django.db.models import F

from mlworker.stats import bland_altman, box_iou_many, icc_2_1

from .models import NerveOutline, RoiAnnotation
from .services import ANCHORS

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
    icc = icc_2_1(matrix)
    ba = bland_altman(matrix[:, 0], matrix[:, 1])
    return {
        "raters": chosen, "hands": len(shared), "note": "",
        "icc": {key: icc[key] for key in ("icc", "ci_low", "ci_high", "f_value", "df1", "df2", "p_value", "n", "k")},
        "bland_altman": {"raters": chosen[:2], **{key: ba[key] for key in (
            "bias", "sd", "loa_low", "loa_high", "bias_ci_low", "bias_ci_high", "n")},
            "means": list(map(float, ba["means"])), "differences": list(map(float, ba["differences"]))},
    }
