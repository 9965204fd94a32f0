"""Pixel/millimetre geometry: fixed-size crops around the nerve, cross-sectional areas, two-point calibration."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = [
    "Box",
    "crop_box",
    "crop_size_px",
    "polygon_area_mm2",
    "polygon_area_px",
    "spacing_from_two_points",
]

Box = tuple[int, int, int, int]  # (x, y, w, h) in pixels; x, y is the top-left corner
Point = tuple[float, float]  # (x, y) in pixels; pixel i covers [i, i + 1)


def _check_spacing(spacing_mm: tuple[float, float]) -> tuple[float, float]:
    row, col = (float(v) for v in spacing_mm)
    if not (math.isfinite(row) and math.isfinite(col) and row > 0 and col > 0):
        raise ValueError(f"pixel spacing must be two positive numbers (row, col) in mm/px, got {spacing_mm!r}")
    return row, col


def _round_half_up(value: float) -> int:
    return math.floor(value + 0.5)


def crop_size_px(size_mm: float, spacing_mm: tuple[float, float]) -> tuple[int, int]:
    """Width and height in pixels of a size_mm square: width from the column spacing, height from the row spacing."""
    if not (math.isfinite(size_mm) and size_mm > 0):
        raise ValueError(f"the crop size must be a positive number of millimetres, got {size_mm!r}")
    row, col = _check_spacing(spacing_mm)
    return max(1, _round_half_up(size_mm / col)), max(1, _round_half_up(size_mm / row))


def crop_box(
    center_xy: tuple[float, float],
    *,
    size_mm: float,
    spacing_mm: tuple[float, float],
    frame_size: tuple[int, int],
) -> Box:
    """A size_mm square around center_xy, shifted (never shrunk) to lie inside a frame of (width, height)."""
    frame_w, frame_h = (int(v) for v in frame_size)
    w, h = crop_size_px(size_mm, spacing_mm)
    if w > frame_w or h > frame_h:
        raise ValueError(
            f"A {size_mm:g} mm crop is {w} × {h} px at this pixel spacing, larger than the "
            f"{frame_w} × {frame_h} px frame; check the clip's pixel spacing (calibration)."
        )
    cx, cy = (float(v) for v in center_xy)
    if not (math.isfinite(cx) and math.isfinite(cy)) or not (0 <= cx <= frame_w and 0 <= cy <= frame_h):
        raise ValueError(f"the crop centre {center_xy!r} lies outside the {frame_w} × {frame_h} px frame")
    # Shifting keeps the physical size fixed, which the models rely on; the nerve is then off-centre.
    x = min(max(_round_half_up(cx - w / 2.0), 0), frame_w - w)
    y = min(max(_round_half_up(cy - h / 2.0), 0), frame_h - h)
    return x, y, w, h


def _as_polygon(points_xy: Sequence[Point]) -> np.ndarray:
    """Points as an (n, 2) float array without repeated consecutive vertices or a repeated closing vertex."""
    pts = np.asarray(points_xy, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise ValueError("a polygon must be a sequence of (x, y) points")
    if not np.isfinite(pts).all():
        raise ValueError("polygon coordinates must be finite numbers")
    if len(pts) > 1:
        # Outlines drawn with a mouse repeat points; those add no edge and are harmless.
        keep = np.any(pts != np.roll(pts, 1, axis=0), axis=1)
        keep[0] = keep[0] or not keep.any()
        pts = pts[keep]
    if len(pts) < 3:
        raise ValueError(f"a polygon needs at least 3 distinct points, got {len(pts)}")
    return pts


def _orientation(ax, ay, bx, by, cx, cy):  # noqa: ANN001, ANN202 - works on floats and arrays alike
    """Sign of the turn a->b->c: +1 left, -1 right, 0 collinear."""
    return np.sign((bx - ax) * (cy - ay) - (by - ay) * (cx - ax))


def _on_segment(ax, ay, bx, by, px, py):  # noqa: ANN001, ANN202
    """For a point collinear with a-b: whether it lies within the segment's bounding box."""
    return (
        (np.minimum(ax, bx) <= px)
        & (px <= np.maximum(ax, bx))
        & (np.minimum(ay, by) <= py)
        & (py <= np.maximum(ay, by))
    )


def _check_simple(pts: np.ndarray) -> None:
    """Raise ValueError when any two edges of the closed polygon cross, touch or fold back."""
    n = len(pts)
    a = pts
    b = np.roll(pts, -1, axis=0)
    # Adjacent edges share a vertex; they are degenerate only when collinear and turning back on each other.
    nxt = np.roll(b, -1, axis=0)
    collinear = _orientation(a[:, 0], a[:, 1], b[:, 0], b[:, 1], nxt[:, 0], nxt[:, 1]) == 0
    backwards = np.einsum("ij,ij->i", b - a, nxt - b) < 0
    if np.any(collinear & backwards):
        raise ValueError("the outline folds back on itself; draw it again as a simple closed outline")
    for i in range(n - 2):
        # Edges i+2 .. n-1, except edge n-1 when i == 0 (it shares vertex 0 with edge 0).
        j_end = n - 1 if i == 0 else n
        if i + 2 >= j_end:
            continue
        cx, cy = a[i + 2 : j_end, 0], a[i + 2 : j_end, 1]
        dx, dy = b[i + 2 : j_end, 0], b[i + 2 : j_end, 1]
        ax, ay, bx, by = a[i, 0], a[i, 1], b[i, 0], b[i, 1]
        o1 = _orientation(ax, ay, bx, by, cx, cy)
        o2 = _orientation(ax, ay, bx, by, dx, dy)
        o3 = _orientation(cx, cy, dx, dy, ax, ay)
        o4 = _orientation(cx, cy, dx, dy, bx, by)
        crossing = (o1 * o2 < 0) & (o3 * o4 < 0)
        touching = (
            ((o1 == 0) & _on_segment(ax, ay, bx, by, cx, cy))
            | ((o2 == 0) & _on_segment(ax, ay, bx, by, dx, dy))
            | ((o3 == 0) & _on_segment(cx, cy, dx, dy, ax, ay))
            | ((o4 == 0) & _on_segment(cx, cy, dx, dy, bx, by))
        )
        if np.any(crossing | touching):
            raise ValueError("the outline crosses itself; draw it again without crossing lines")


def polygon_area_px(points_xy: Sequence[Point]) -> float:
    """Area in px² of a simple polygon (shoelace); ValueError for fewer than 3 points or a self-intersecting outline."""
    pts = _as_polygon(points_xy)
    _check_simple(pts)
    x, y = pts[:, 0], pts[:, 1]
    area = abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))) / 2.0
    if area == 0.0:
        raise ValueError("the outline has no area (all points lie on one line)")
    return area


def polygon_area_mm2(points_xy: Sequence[Point], spacing_mm: tuple[float, float]) -> float:
    """Area in mm² of a simple polygon: px² × row spacing × column spacing."""
    row, col = _check_spacing(spacing_mm)
    return polygon_area_px(points_xy) * row * col


def spacing_from_two_points(p1: Point, p2: Point, distance_mm: float) -> float:
    """mm per pixel from two clicked marks distance_mm apart, assuming square pixels."""
    if not (math.isfinite(distance_mm) and distance_mm > 0):
        raise ValueError(f"the distance between the marks must be a positive number of mm, got {distance_mm!r}")
    coords = [float(v) for v in (*p1, *p2)]
    if not all(math.isfinite(v) for v in coords):
        raise ValueError("the calibration points must have finite coordinates")
    pixels = math.hypot(coords[2] - coords[0], coords[3] - coords[1])
    if pixels < 1.0:
        raise ValueError(
            "the two calibration points are the same (less than one pixel apart); "
            "click two different depth-scale marks"
        )
    return distance_mm / pixels
