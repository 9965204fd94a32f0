"""Crop geometry, cross-sectional area and two-point calibration."""

from __future__ import annotations

import math

import pytest

from mlworker.media.geometry import (
    crop_box,
    crop_size_px,
    polygon_area_mm2,
    polygon_area_px,
    spacing_from_two_points,
)

FRAME = (800, 600)
ISO = (0.125, 0.125)


def test_crop_size_from_spacing() -> None:
    assert crop_size_px(15.0, ISO) == (120, 120)
    # Width follows the column spacing, height the row spacing.
    assert crop_size_px(15.0, (0.1, 0.125)) == (120, 150)
    assert crop_size_px(15.0, (0.07, 0.07)) == (214, 214)  # 214.29 rounds down
    assert crop_size_px(1.0, (0.4, 0.4)) == (3, 3)  # 2.5 rounds half up
    assert crop_size_px(0.01, (5.0, 5.0)) == (1, 1)  # never below one pixel


@pytest.mark.parametrize("spacing", [(0.0, 0.1), (0.1, -0.1), (float("nan"), 0.1), (0.1, float("inf"))])
def test_crop_size_refuses_bad_spacing(spacing: tuple[float, float]) -> None:
    with pytest.raises(ValueError, match="spacing"):
        crop_size_px(15.0, spacing)


def test_crop_size_refuses_bad_size() -> None:
    with pytest.raises(ValueError):
        crop_size_px(0.0, ISO)


def test_crop_box_centred_inside_the_frame() -> None:
    assert crop_box((400, 300), size_mm=15, spacing_mm=ISO, frame_size=FRAME) == (340, 240, 120, 120)
    assert crop_box((400.4, 299.6), size_mm=15, spacing_mm=ISO, frame_size=FRAME) == (340, 240, 120, 120)


@pytest.mark.parametrize(
    ("centre", "expected"),
    [
        ((10, 300), (0, 240, 120, 120)),  # left edge
        ((795, 300), (680, 240, 120, 120)),  # right edge
        ((400, 5), (340, 0, 120, 120)),  # top edge
        ((400, 598), (340, 480, 120, 120)),  # bottom edge
        ((0, 0), (0, 0, 120, 120)),  # top-left corner
        ((800, 600), (680, 480, 120, 120)),  # bottom-right corner
    ],
)
def test_crop_box_is_shifted_not_shrunk_at_edges(centre: tuple[float, float], expected: tuple[int, ...]) -> None:
    box = crop_box(centre, size_mm=15, spacing_mm=ISO, frame_size=FRAME)
    assert box == expected
    x, y, w, h = box
    assert 0 <= x and x + w <= FRAME[0] and 0 <= y and y + h <= FRAME[1]


def test_crop_box_refuses_a_crop_larger_than_the_frame() -> None:
    with pytest.raises(ValueError, match="120 × 120 px.*100 × 80 px"):
        crop_box((50, 40), size_mm=15, spacing_mm=ISO, frame_size=(100, 80))


def test_crop_box_refuses_a_centre_outside_the_frame() -> None:
    with pytest.raises(ValueError, match="outside"):
        crop_box((900, 300), size_mm=15, spacing_mm=ISO, frame_size=FRAME)


def test_rectangle_area_in_mm2() -> None:
    rect = [(10, 10), (50, 10), (50, 30), (10, 30)]  # 40 x 20 px
    assert polygon_area_px(rect) == 800.0
    assert polygon_area_mm2(rect, (0.1, 0.1)) == pytest.approx(8.0)
    assert polygon_area_mm2(list(reversed(rect)), (0.1, 0.1)) == pytest.approx(8.0)
    assert polygon_area_mm2([*rect, rect[0]], (0.1, 0.1)) == pytest.approx(8.0)  # explicitly closed


def test_triangle_and_anisotropic_spacing() -> None:
    tri = [(0, 0), (30, 0), (0, 20)]
    assert polygon_area_px(tri) == 300.0
    assert polygon_area_mm2(tri, (0.2, 0.1)) == pytest.approx(6.0)


def test_concave_polygon_and_circle() -> None:
    ell = [(0, 0), (20, 0), (20, 10), (10, 10), (10, 30), (0, 30)]  # L: 20 x 10 foot + 10 x 20 upright
    assert polygon_area_px(ell) == 400.0
    r = 40.0
    circle = [(r * math.cos(t), r * math.sin(t)) for t in (2 * math.pi * k / 720 for k in range(720))]
    assert polygon_area_px(circle) == pytest.approx(math.pi * r * r, rel=1e-4)


@pytest.mark.parametrize(
    "points",
    [
        [(0, 0), (10, 10)],  # too few
        [(0, 0), (0, 0), (5, 5), (5, 5)],  # too few distinct
        [(0, 0), (10, 10), (10, 0), (0, 10)],  # bow tie (shoelace gives 0)
        [(0, 0), (30, 10), (30, 0), (0, 20)],  # lopsided bow tie (shoelace gives a non-zero area)
        [(0, 0), (10, 0), (5, 5), (10, 10), (0, 10), (5, 5)],  # figure eight touching at (5, 5)
        [(0, 0), (10, 0), (20, 0)],  # collinear: no area
        [(0, 0), (20, 0), (10, 0), (10, 10)],  # folds back along its first edge
        [(0, 0), (10, 0), (10, 10), (5, 0)],  # vertex lands on an earlier edge
    ],
)
def test_invalid_polygons_are_refused(points: list[tuple[float, float]]) -> None:
    with pytest.raises(ValueError):
        polygon_area_px(points)


def test_two_point_calibration() -> None:
    assert spacing_from_two_points((100, 50), (100, 250), 10.0) == pytest.approx(0.05)
    assert spacing_from_two_points((0, 0), (30, 40), 5.0) == pytest.approx(0.1)


@pytest.mark.parametrize(
    ("p1", "p2", "distance"),
    [((10, 10), (10, 10), 10.0), ((10, 10), (10.5, 10), 10.0), ((0, 0), (0, 100), 0.0), ((0, 0), (0, 100), -5.0)],
)
def test_two_point_calibration_refuses_bad_input(
    p1: tuple[float, float], p2: tuple[float, float], distance: float
) -> None:
    with pytest.raises(ValueError):
        spacing_from_two_points(p1, p2, distance)
