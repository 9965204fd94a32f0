"""Plain rules of the explanation study (no Django, no torch): which frames, which outcome, which outline."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def outcome(label: int, probability: float, threshold: float) -> str:
    """TP/FP/FN/TN of one prediction; positive when probability >= threshold, as mlworker.stats counts."""
    positive = probability >= threshold
    if label:
        return "TP" if positive else "FN"
    return "FP" if positive else "TN"


def evenly_spaced(items: Sequence, count: int | None) -> list:
    """`count` items spread evenly from first to last (all of them when count is None or not smaller)."""
    if count is None or count >= len(items):
        return list(items)
    if count <= 0:
        return []
    picks = np.unique(np.round(np.linspace(0, len(items) - 1, count)).astype(int))
    return [items[i] for i in picks]


def box_centre(box: Sequence[float]) -> np.ndarray:
    x, y, w, h = box
    return np.array([x + w / 2.0, y + h / 2.0])


def carried_outline(points: np.ndarray, *, source_box: Sequence[float], target_box: Sequence[float]) -> np.ndarray:
    """A traced outline moved to another frame of the clip by the displacement of the ROI centre.

    The ROI follows the nerve as the probe slides, so the shift between the two frames' ROI centres is the
    nerve's own shift; its shape is taken as unchanged over the short distance.
    """
    return np.asarray(points, float) + (box_centre(target_box) - box_centre(source_box))


def nearest_traced(index: int, traced_indices: Sequence[int]) -> int | None:
    """The traced frame index closest to `index` (ties to the earlier frame); None when there is none."""
    if not traced_indices:
        return None
    return min(traced_indices, key=lambda t: (abs(t - index), t))


def mm_per_crop_px(box: Sequence[float], *, spacing_col_mm: float | None, size: int) -> float | None:
    """Millimetres per pixel of the resized square crop: the box's width in mm over the crop side."""
    if spacing_col_mm is None:
        return None
    return float(box[2]) * spacing_col_mm / size
