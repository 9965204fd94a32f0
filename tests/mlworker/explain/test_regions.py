import math

import numpy as np
import pytest

from mlworker.explain.regions import (
    attribution_shares,
    nerve_mask,
    outline_to_crop,
    ring_mask,
)
from mlworker.media.geometry import crop_box
from mlworker.ml import crop_image


def _circle(cx, cy, r, n=720):
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.c_[cx + r * np.cos(t), cy + r * np.sin(t)]


def _centre_distance(size, cx, cy):
    """Distance of every pixel centre (i + 0.5) from (cx, cy), indexed [row, col]."""
    yy, xx = np.mgrid[0:size, 0:size] + 0.5
    return np.hypot(xx - cx, yy - cy)


def test_outline_maps_into_a_box_clamped_at_the_frame_edge():
    # 100 × 80 frame at 0.1 mm/px: a 3 mm crop is 30 px. Centred at (95, 10) it would stick out to the
    # right and the top, so crop_box shifts it to x = 100 - 30 = 70, y = 0.
    box = crop_box((95.0, 10.0), size_mm=3.0, spacing_mm=(0.1, 0.1), frame_size=(100, 80))
    assert box == (70, 0, 30, 30)
    points = np.array([[85.5, 12.25], [70.0, 0.0], [100.0, 30.0]])
    # By hand: subtract the corner (70, 0), scale by 60 / 30 = 2.
    expected = np.array([[31.0, 24.5], [0.0, 0.0], [60.0, 60.0]])
    np.testing.assert_allclose(outline_to_crop(points, box, 60), expected)
    # A non-square box scales each axis by its own side.
    np.testing.assert_allclose(outline_to_crop([[80.0, 12.0]], (70, 0, 40, 24), 48), [[12.0, 24.0]])


@pytest.mark.parametrize("box", [(70, 0, 30, 30), (-6, -4, 30, 30), (60, 2, 32, 24)])
@pytest.mark.parametrize("size", [15, 60])
def test_outline_mapping_follows_the_pixels_crop_image_moves(box, size):
    # A bright 4 × 4 block in the frame: its centroid in the crop lands where outline_to_crop maps it.
    frame = np.zeros((80, 100), dtype=np.uint8)
    x0, y0 = box[0] + 11, box[1] + 7
    x0, y0 = max(x0, 0), max(y0, 0)
    frame[y0 : y0 + 4, x0 : x0 + 4] = 200
    crop = crop_image(frame, box, size).astype(float)
    yy, xx = np.mgrid[0:size, 0:size] + 0.5
    centroid = np.array([(crop * xx).sum(), (crop * yy).sum()]) / crop.sum()
    mapped = outline_to_crop([[x0 + 2.0, y0 + 2.0]], box, size)[0]
    np.testing.assert_allclose(centroid, mapped, atol=0.05 * size / 15)


def test_nerve_mask_fills_pixels_whose_centre_is_inside():
    square = nerve_mask([[10, 10], [20, 10], [20, 20], [10, 20]], 32)
    assert square.sum() == 100
    rows, cols = np.nonzero(square)
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (10, 19, 10, 19)


def test_nerve_mask_of_a_circle():
    r = 10.0
    mask = nerve_mask(_circle(32.3, 30.8, r), 64)
    d = _centre_distance(64, 32.3, 30.8)
    # The 720-gon differs from the circle by far less than a pixel: only centres on the rim may disagree.
    assert not (mask & (d > r + 0.01)).any() and (mask | (d > r - 0.01)).all()
    assert abs(mask.sum() - math.pi * r**2) <= 2 * math.pi * r * 0.5


def test_nerve_mask_clips_an_outline_leaving_the_crop():
    mask = nerve_mask([[-10, -10], [8, -10], [8, 8], [-10, 8]], 16)
    assert mask.sum() == 64 and mask[:8, :8].all()


def test_ring_is_a_band_of_the_given_width_outside_the_nerve():
    r, w = 10.0, 3.0
    nerve = nerve_mask(_circle(32.0, 32.0, r), 64)
    ring = ring_mask(nerve, w)
    d = _centre_distance(64, 32.0, 32.0)
    assert not (ring & nerve).any()
    assert (d[ring] > r - 0.01).all() and (d[ring] <= r + w + 1.0).all()
    assert ring[(d > r + 0.5) & (d <= r + w - 0.5)].all()
    assert abs(ring.sum() - math.pi * ((r + w) ** 2 - r**2)) <= 2 * math.pi * (r + w) * 0.5


def test_ring_along_a_straight_edge_has_exactly_the_width():
    nerve = nerve_mask([[10, 10], [20, 10], [20, 20], [10, 20]], 32)
    # Centres right of the edge x = 20 sit at 0.5, 1.5, 2.5 px from it: a 1.6 px band holds two columns.
    ring = ring_mask(nerve, 1.6)
    assert ring[10:20, 20:22].all() and not ring[10:20, 22:].any()
    assert ring[10:20, 8:10].all() and not ring[10:20, :8].any()
    assert ring_mask(nerve, 2.5)[10:20, 20:23].all()


def test_ring_of_no_nerve_is_empty_and_width_must_be_positive():
    assert not ring_mask(np.zeros((8, 8), bool), 2.0).any()
    nerve = np.zeros((8, 8), bool)
    nerve[3:5, 3:5] = True
    for width in (0, -1, float("nan")):
        with pytest.raises(ValueError, match="ring width"):
            ring_mask(nerve, width)
    with pytest.raises(ValueError, match="bool"):
        ring_mask(nerve.astype(np.uint8), 1.0)


def _regions(size=32):
    nerve = nerve_mask([[10, 10], [20, 10], [20, 20], [10, 20]], size)
    return nerve, ring_mask(nerve, 2.0)


def test_all_positive_mass_inside_the_nerve_gives_share_one():
    nerve, ring = _regions()
    a = np.where(nerve, 1.0, -3.0)  # negative evidence elsewhere is not CTS attribution
    a[15, 15] = 2.0
    s = attribution_shares(a, nerve, ring)
    assert (s["nerve"], s["ring"], s["outside"]) == (1.0, 0.0, 0.0)
    assert s["pointing"] == "nerve" and s["positive_mass"] == pytest.approx(101.0) and s["reason"] is None
    assert s["nerve_area"] == 100 / 1024 and s["ring_area"] == ring.sum() / 1024
    assert s["nerve_area"] + s["ring_area"] + s["outside_area"] == pytest.approx(1.0)


def test_uniform_map_shares_equal_area_shares():
    nerve, ring = _regions()
    s = attribution_shares(np.full((32, 32), 0.7), nerve, ring)
    for region in ("nerve", "ring", "outside"):
        assert s[region] == pytest.approx(s[f"{region}_area"])
    # Every pixel is the maximum: the plateau votes by pixel count and the outside holds most.
    assert s["pointing"] == "outside"


@pytest.mark.parametrize("where, expected", [((9, 15), "ring"), ((15, 15), "nerve"), ((1, 1), "outside")])
def test_pointing_game_finds_the_region_of_the_maximum(where, expected):
    nerve, ring = _regions()
    a = np.random.default_rng(0).random((32, 32))
    a[where] = 5.0
    assert attribution_shares(a, nerve, ring)["pointing"] == expected


def test_pointing_tie_between_regions_does_not_favour_the_nerve():
    nerve, ring = _regions()
    a = np.zeros((32, 32))
    a[15, 15] = a[0, 0] = 1.0
    assert attribution_shares(a, nerve, ring)["pointing"] == "outside"


@pytest.mark.parametrize("fill", [0.0, -1.0])
def test_map_without_positive_mass_has_no_shares_and_says_why(fill):
    nerve, ring = _regions()
    s = attribution_shares(np.full((32, 32), fill), nerve, ring)
    assert s["nerve"] is None and s["ring"] is None and s["outside"] is None and s["pointing"] is None
    assert s["positive_mass"] == 0.0 and "no positive attribution" in s["reason"]
    assert s["nerve_area"] == 100 / 1024


def test_bad_maps_and_masks_are_refused():
    nerve, ring = _regions()
    with pytest.raises(ValueError, match="same 2-D crop shape"):
        attribution_shares(np.ones((16, 16)), nerve, ring)
    bad = np.ones((32, 32))
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        attribution_shares(bad, nerve, ring)
    with pytest.raises(ValueError, match="overlaps"):
        attribution_shares(np.ones((32, 32)), nerve, ring | nerve)
    with pytest.raises(ValueError, match="at least 3 points"):
        nerve_mask([[1, 1], [2, 2]], 8)
    with pytest.raises(ValueError, match="no area"):
        outline_to_crop([[1, 1]], (0, 0, 0, 10), 8)
