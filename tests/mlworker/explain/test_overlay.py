"""Overlay PNGs: colour by sign, opacity by magnitude, transparent where nothing is attributed."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from mlworker.explain.overlay import colour_lut, heatmap_png, overlay_png


def _decode(png: bytes) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_UNCHANGED)
    code = cv2.COLOR_BGRA2RGBA if image.shape[-1] == 4 else cv2.COLOR_BGR2RGB
    return cv2.cvtColor(image, code)


def _map() -> np.ndarray:
    a = np.zeros((32, 32), np.float32)
    a[4:10, 4:10] = 2.0  # evidence for CTS
    a[20:26, 20:26] = -1.0  # evidence against
    return a


def test_heatmap_is_red_for_cts_blue_against_and_transparent_at_zero() -> None:
    rgba = _decode(heatmap_png(_map()))
    assert rgba.shape == (32, 32, 4)
    r, g, b, alpha = (rgba[..., i].astype(int) for i in range(4))
    assert alpha[0, 0] == 0 and alpha[6, 6] == 255 and 120 <= alpha[22, 22] <= 135
    assert r[6, 6] > 80 and r[6, 6] > 3 * b[6, 6]
    assert b[22, 22] > r[22, 22]


def test_overlay_keeps_the_crop_where_nothing_is_attributed() -> None:
    crop = np.tile(np.arange(32, dtype=np.uint8) * 8, (32, 1))
    rgb = _decode(overlay_png(crop, _map(), alpha=0.6))
    assert rgb.shape == (32, 32, 3)
    np.testing.assert_array_equal(rgb[0, :, 0], crop[0])
    assert rgb[6, 6, 0] > rgb[6, 6, 2]
    blank = _decode(overlay_png(crop, np.zeros((32, 32))))
    np.testing.assert_array_equal(blank, np.repeat(crop[..., None], 3, axis=-1))
    assert _decode(heatmap_png(np.zeros((32, 32))))[..., 3].max() == 0


def test_colour_table_is_diverging_and_monotone_in_lightness() -> None:
    lut = colour_lut().astype(float)
    lightness = lut @ [0.299, 0.587, 0.114]
    middle = len(lut) // 2
    assert (np.diff(lightness[:middle]) >= -1).all() and (np.diff(lightness[middle:]) <= 1).all()
    assert lut[0, 2] > lut[0, 0] and lut[-1, 0] > lut[-1, 2]


def test_bad_maps_are_refused() -> None:
    crop = np.zeros((8, 8), np.uint8)
    with pytest.raises(ValueError, match="same shape"):
        overlay_png(crop, np.zeros((4, 4)))
    with pytest.raises(ValueError, match="NaN"):
        heatmap_png(np.full((8, 8), np.nan))
    with pytest.raises(ValueError, match="alpha"):
        overlay_png(crop, np.zeros((8, 8)), alpha=1.5)
    with pytest.raises(ValueError, match="grey uint8"):
        overlay_png(crop.astype(float), np.zeros((8, 8)))
