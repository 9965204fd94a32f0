"""ROI propagation across the frames of a clip: the annotator marks keyframes, the rest get proposals.

Between two keyframes the box centre is interpolated linearly and then refined by matching both
keyframe patches in a small window (weighted by temporal distance), which follows non-uniform
probe motion. Before the first and after the last keyframe the box is tracked frame to frame with
normalised cross-correlation; a sub-pixel state and a drift correction against the keyframe patch
(Matthews et al., IEEE TPAMI 2004) keep the integer boxes from sticking or wandering off.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

Box = tuple[int, int, int, int]  # x, y, w, h in pixels

METHODS = ("keyframe", "interpolated", "tracked")
REFINE_MIN_SCORE = 0.3  # below this the keyframe patches are not recognised: keep the linear guess
DRIFT_WINDOW_PX = 2  # how far the keyframe patch may pull the frame-to-frame estimate
DRIFT_AGREE_PX = 1.5  # correction larger than this means the keyframe look no longer applies


@dataclass(frozen=True)
class Proposal:
    """A box for one frame and how it was obtained (score: match peak, None for keyframes/plain interpolation)."""

    box: Box
    method: str
    score: float | None = None

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {self.method!r}")


def clamp_box(box: Box, shape: tuple[int, ...]) -> Box:
    """Shift a box (without shrinking it) so that it lies inside an image of `shape` (H, W)."""
    x, y, w, h = (int(v) for v in box)
    height, width = int(shape[0]), int(shape[1])
    if w <= 0 or h <= 0:
        raise ValueError(f"box {box} has no area; give a positive width and height")
    if w > width or h > height:
        raise ValueError(f"box {box} is larger than the {width}x{height} frame; draw a smaller box")
    return (min(max(x, 0), width - w), min(max(y, 0), height - h), w, h)


def _center(box: Box) -> tuple[float, float]:
    x, y, w, h = box
    return x + w / 2.0, y + h / 2.0


def _box_at(cx: float, cy: float, w: int, h: int) -> Box:
    return (int(round(cx - w / 2.0)), int(round(cy - h / 2.0)), int(w), int(h))


def interpolate_boxes(keyframes: dict[int, Box], indices: Sequence[int]) -> dict[int, Box]:
    """Boxes for `indices`: centre (and size) linear between the two nearest keyframes, held beyond the ends."""
    if not keyframes:
        raise ValueError("no keyframes: mark the ROI on at least one frame first")
    keys = sorted(keyframes)
    out: dict[int, Box] = {}
    for i in indices:
        if i in keyframes:
            out[i] = tuple(int(v) for v in keyframes[i])  # type: ignore[assignment]
            continue
        j = bisect.bisect_left(keys, i)
        if j == 0 or j == len(keys):
            out[i] = tuple(int(v) for v in keyframes[keys[0] if j == 0 else keys[-1]])  # type: ignore[assignment]
            continue
        k0, k1 = keys[j - 1], keys[j]
        alpha = (i - k0) / (k1 - k0)
        (c0x, c0y), (c1x, c1y) = _center(keyframes[k0]), _center(keyframes[k1])
        w = int(round((1 - alpha) * keyframes[k0][2] + alpha * keyframes[k1][2]))
        h = int(round((1 - alpha) * keyframes[k0][3] + alpha * keyframes[k1][3]))
        out[i] = _box_at((1 - alpha) * c0x + alpha * c1x, (1 - alpha) * c0y + alpha * c1y, w, h)
    return out


def _as_float(frame: np.ndarray) -> np.ndarray:
    arr = np.asarray(frame)
    if arr.ndim != 2:
        raise ValueError(f"frames must be 2-D grey images, got shape {arr.shape}; convert colour frames to grey")
    return arr.astype(np.float32, copy=False)


def _patch(frame: np.ndarray, cx: float, cy: float, w: int, h: int) -> np.ndarray:
    """Sub-pixel w x h patch centred at (cx, cy); borders replicated."""
    return cv2.getRectSubPix(frame, (w, h), (cx - 0.5, cy - 0.5))


def _peak(scores: np.ndarray) -> tuple[float, float, float]:
    """Arg-max of a score map with parabolic sub-pixel refinement: (x, y, peak value)."""
    scores = np.nan_to_num(scores, nan=-1.0, posinf=-1.0, neginf=-1.0)
    _, best, _, (px, py) = cv2.minMaxLoc(scores)

    def offset(m: float, c: float, p: float) -> float:
        den = m - 2 * c + p
        return float(np.clip(0.5 * (m - p) / den, -0.5, 0.5)) if den < 0 else 0.0

    dx = offset(scores[py, px - 1], best, scores[py, px + 1]) if 0 < px < scores.shape[1] - 1 else 0.0
    dy = offset(scores[py - 1, px], best, scores[py + 1, px]) if 0 < py < scores.shape[0] - 1 else 0.0
    return px + dx, py + dy, float(best)


def _match(frame: np.ndarray, templates: list[tuple[np.ndarray, float]], cx: float, cy: float,
           margin: int) -> tuple[float, float, float]:
    """Best centre for the weighted templates within `margin` px of (cx, cy): (cx, cy, score)."""
    th, tw = templates[0][0].shape
    height, width = frame.shape
    x0 = int(np.floor(cx - tw / 2.0)) - margin
    y0 = int(np.floor(cy - th / 2.0)) - margin
    xa, ya = max(x0, 0), max(y0, 0)
    xb = min(x0 + tw + 2 * margin + 1, width)
    yb = min(y0 + th + 2 * margin + 1, height)
    if xb - xa < tw or yb - ya < th:
        return cx, cy, float("nan")
    window = frame[ya:yb, xa:xb]
    scores = sum(wt * cv2.matchTemplate(window, t, cv2.TM_CCOEFF_NORMED) for t, wt in templates)
    px, py, best = _peak(np.asarray(scores, dtype=np.float32))
    return xa + px + tw / 2.0, ya + py + th / 2.0, best


def _clamp_center(cx: float, cy: float, w: int, h: int, shape: tuple[int, int]) -> tuple[float, float]:
    return float(np.clip(cx, w / 2.0, shape[1] - w / 2.0)), float(np.clip(cy, h / 2.0, shape[0] - h / 2.0))


def track_box(frames: Sequence[np.ndarray], start_box: Box, *,
              search_margin_px: int | None = None) -> list[tuple[Box, float]]:
    """Track start_box (on frames[0]) through frames[1:] by NCC template matching; a (box, score) per later frame."""
    if len(frames) == 0:
        raise ValueError("no frames to track through")
    first = _as_float(frames[0])
    x, y, w, h = clamp_box(start_box, first.shape)
    margin = search_margin_px if search_margin_px is not None else max(8, max(w, h) // 4)
    if margin < 1:
        raise ValueError("search_margin_px must be >= 1")
    cx, cy = _center((x, y, w, h))
    anchor = _patch(first, cx, cy, w, h)
    template = anchor
    prev_shape = first.shape
    out: list[tuple[Box, float]] = []
    for raw in frames[1:]:
        frame = _as_float(raw)
        if frame.shape != prev_shape:
            raise ValueError(f"all frames must have one size; got {frame.shape} after {prev_shape}")
        nx, ny, score = _match(frame, [(template, 1.0)], cx, cy, margin)
        if np.isfinite(score):
            # Drift correction: let the keyframe patch refine the estimate if it agrees.
            ax, ay, ascore = _match(frame, [(anchor, 1.0)], nx, ny, DRIFT_WINDOW_PX)
            if np.isfinite(ascore) and np.hypot(ax - nx, ay - ny) <= DRIFT_AGREE_PX:
                nx, ny = ax, ay
            cx, cy = _clamp_center(nx, ny, w, h, frame.shape)
        else:
            score = 0.0
        template = _patch(frame, cx, cy, w, h)
        out.append((clamp_box(_box_at(cx, cy, w, h), frame.shape), float(score)))
    return out


def _refine_between(frames: dict[int, np.ndarray], k0: int, b0: Box, k1: int, b1: Box,
                    targets: list[int]) -> dict[int, Proposal]:
    """Interpolated proposals for `targets` (k0 < i < k1), refined by matching both keyframe patches."""
    linear = interpolate_boxes({k0: b0, k1: b1}, targets)
    can_refine = k0 in frames and k1 in frames and b0[2:] == b1[2:]
    if not can_refine:
        return {i: Proposal(linear[i], "interpolated", None) for i in targets}
    f0, f1 = _as_float(frames[k0]), _as_float(frames[k1])
    w, h = b0[2], b0[3]
    t0, t1 = _patch(f0, *_center(b0), w, h), _patch(f1, *_center(b1), w, h)
    # Window: a fraction of the keyframe displacement plus a floor for non-uniform motion.
    span = float(np.hypot(*np.subtract(_center(b1), _center(b0))))
    margin = int(np.ceil(max(3.0, 0.1 * max(w, h), 0.5 * span)))
    out: dict[int, Proposal] = {}
    for i in targets:
        frame = _as_float(frames[i])
        alpha = (i - k0) / (k1 - k0)
        lx, ly = _center(linear[i])
        cx, cy, score = _match(frame, [(t0, 1 - alpha), (t1, alpha)], lx, ly, margin)
        if np.isfinite(score) and score >= REFINE_MIN_SCORE:
            box = clamp_box(_box_at(cx, cy, w, h), frame.shape)
            out[i] = Proposal(box, "interpolated", float(score))
        else:
            out[i] = Proposal(clamp_box(linear[i], frame.shape), "interpolated", None)
    return out


def propagate(frames: dict[int, np.ndarray], keyframes: dict[int, Box]) -> dict[int, Proposal]:
    """Proposals for every frame: keyframes as marked, interpolation between them, tracking beyond them."""
    if not keyframes:
        raise ValueError("no keyframes: mark the ROI on at least one frame first")
    if not frames:
        return {}
    order = sorted(frames)
    shape = np.asarray(frames[order[0]]).shape
    if any(np.asarray(frames[i]).shape != shape for i in order):
        raise ValueError("all frames must have one size; re-extract the clip's frames")
    keys = sorted(keyframes)
    kboxes = {k: clamp_box(keyframes[k], shape) for k in keys}
    out: dict[int, Proposal] = {}
    for i in order:
        if i in kboxes:
            out[i] = Proposal(kboxes[i], "keyframe", None)
    for k0, k1 in zip(keys, keys[1:]):
        targets = [i for i in order if k0 < i < k1]
        if targets:
            out.update(_refine_between(frames, k0, kboxes[k0], k1, kboxes[k1], targets))
    for anchor, targets in ((keys[-1], [i for i in order if i > keys[-1]]),
                            (keys[0], [i for i in reversed(order) if i < keys[0]])):
        if not targets:
            continue
        if anchor not in frames:
            raise ValueError(f"keyframe {anchor} has no image in `frames`; include it so tracking can start there")
        tracked = track_box([frames[anchor]] + [frames[i] for i in targets], kboxes[anchor])
        for i, (box, score) in zip(targets, tracked):
            out[i] = Proposal(box, "tracked", score)
    return {i: out[i] for i in order}
