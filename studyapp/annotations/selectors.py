"""Agreement between annotators: ROI overlap per frame, and CSA from traced outlines."""

from __future__ import annotations

import math
from collections import defaultdict
from itertools import combinations

import numpy as np

from mlworker.stats import bland_altman, box_iou, icc_2_1

from .models import NerveOutline, RoiAnnotation
from .services import ANCHORS


def roi_agreement(*, clip_id: int | None = None) -> dict:
    """Mean pairwise IoU of confirmed ROIs on frames that two or more annotators marked."""
    rois = RoiAnnotation.objects.filter(status__in=ANCHORS).select_related("frame", "annotator")
    if clip_id is not None:
        rois = rois.filter(frame__clip_id=clip_id)
    by_frame: dict[tuple[int, int], dict[str, tuple]] = defaultdict(dict)
    for roi in rois:
        by_frame[(roi.frame.clip_id, roi.frame.index)][roi.annotator.get_username()] = roi.box
    per_clip: dict[int, list[float]] = defaultdict(list)
    pairs: dict[str, list[float]] = defaultdict(list)
    for (clip, _index), boxes in sorted(by_frame.items()):
        if len(boxes) < 2:
            continue
        ious = []
        for (a, box_a), (b, box_b) in combinations(sorted(boxes.items()), 2):
            iou = box_iou(box_a, box_b)
            ious.append(iou)
            pairs[f"{a} vs {b}"].append(iou)
        per_clip[clip].append(float(np.mean(ious)))
    everything = [v for values in per_clip.values() for v in values]
    return {
        "frames_compared": len(everything),
        "mean_iou": float(np.mean(everything)) if everything else None,
        "per_clip": [{"clip": clip, "frames": len(v), "mean_iou": float(np.mean(v)), "min_iou": float(np.min(v))}
                     for clip, v in sorted(per_clip.items())],
        "per_pair": [{"pair": pair, "frames": len(v), "mean_iou": float(np.mean(v))}
                     for pair, v in sorted(pairs.items())],
    }


def csa_agreement() -> dict:
    """Inter-rater agreement of outline CSA per hand: ICC(2,1) with 95% CI, and Bland–Altman.

    Each annotator's value for a hand is the mean of their outlines on that hand's clips. The raters
    compared are those who outlined the most hands; hands outlined by all of them enter.
    """
    values: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for outline in NerveOutline.objects.select_related("frame__clip", "annotator"):
        values[outline.annotator.get_username()][outline.frame.clip.hand_id].append(outline.area_mm2)
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
    ba = bland_altman(matrix[:, 0], matrix[:, 1])
    return {
        "raters": chosen, "hands": len(shared), "note": "",
        # F is infinite when raters agree perfectly (up to offsets); JSON has no infinity.
        "icc": {key: (icc[key] if key != "f_value" or math.isfinite(icc[key]) else None)
                for key in ("icc", "ci_low", "ci_high", "f_value", "df1", "df2", "p_value", "n", "k")},
        "bland_altman": {"raters": chosen[:2], **{key: ba[key] for key in (
            "bias", "sd", "loa_low", "loa_high", "bias_ci_low", "bias_ci_high", "n")},
            "means": list(map(float, ba["means"])), "differences": list(map(float, ba["differences"]))},
    }
