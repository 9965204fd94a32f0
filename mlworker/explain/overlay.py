"""Attribution maps as PNGs: the map alone (for an opacity slider over the crop) or blended over the grey crop."""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["DIVERGING_STOPS", "colour_lut", "heatmap_png", "overlay_png"]

# ColorBrewer RdBu (11 classes), reversed: blue = evidence against CTS, red = evidence for it. ColorBrewer marks
# it colour-blind safe; the two hues differ in lightness too, so the sign reads in grey print as well.
DIVERGING_STOPS: tuple[str, ...] = (
    "#053061", "#2166ac", "#4393c3", "#92c5de", "#d1e5f0", "#f7f7f7",
    "#fddbc7", "#f4a582", "#d6604d", "#b2182b", "#67001f",
)


def colour_lut(n: int = 256) -> np.ndarray:
    """uint8 (n, 3) RGB table from the most negative to the most positive value, linear between the stops."""
    stops = np.array([[int(h[i : i + 2], 16) for i in (1, 3, 5)] for h in DIVERGING_STOPS], dtype=np.float64)
    at = np.linspace(0.0, 1.0, len(stops))
    t = np.linspace(0.0, 1.0, n)
    return np.stack([np.interp(t, at, stops[:, c]) for c in range(3)], axis=1).round().astype(np.uint8)


_LUT = colour_lut()


def _colour_and_weight(attribution: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """RGB float (S, S, 3) of each value on a scale symmetric about 0, and its weight |a| / max|a| in [0, 1]."""
    a = np.asarray(attribution, dtype=np.float64)
    if a.ndim != 2:
        raise ValueError(f"An attribution map is 2-D (S, S), got shape {a.shape}.")
    if not np.isfinite(a).all():
        raise ValueError("The attribution map holds NaN or infinite values; recompute it before drawing it.")
    vmax = float(np.abs(a).max()) if a.size else 0.0
    if vmax == 0.0:
        # Nothing attributed anywhere: a fully transparent map, not a division by zero.
        return np.zeros(a.shape + (3,)), np.zeros(a.shape)
    scaled = a / vmax  # [-1, 1], zero in the middle of the table
    index = np.rint((scaled + 1.0) / 2.0 * (len(_LUT) - 1)).astype(np.intp)
    return _LUT[index].astype(np.float64), np.abs(scaled)


def _png(rgb_or_rgba: np.ndarray) -> bytes:
    code = cv2.COLOR_RGBA2BGRA if rgb_or_rgba.shape[-1] == 4 else cv2.COLOR_RGB2BGR
    ok, buf = cv2.imencode(".png", cv2.cvtColor(rgb_or_rgba, code))
    if not ok:
        raise RuntimeError("OpenCV could not encode the PNG.")
    return buf.tobytes()


def heatmap_png(attribution: np.ndarray) -> bytes:
    """RGBA PNG of the map alone: opacity grows with |value|, so areas with ~0 attribution are transparent."""
    colour, weight = _colour_and_weight(attribution)
    alpha = np.rint(weight * 255.0)[..., None]
    return _png(np.concatenate([colour, alpha], axis=-1).astype(np.uint8))


def overlay_png(crop: np.ndarray, attribution: np.ndarray, *, alpha: float = 0.5) -> bytes:
    """RGB PNG of the grey crop (S, S) uint8 with the map blended over it, at most `alpha` opaque where |a| peaks."""
    crop = np.asarray(crop)
    if crop.ndim != 2 or crop.dtype != np.uint8:
        raise ValueError(f"crop must be a grey uint8 (S, S) image, got {crop.dtype} {crop.shape}.")
    if np.shape(attribution) != crop.shape:
        raise ValueError(f"attribution {np.shape(attribution)} and crop {crop.shape} must have the same shape.")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must lie in [0, 1], got {alpha!r}.")
    colour, weight = _colour_and_weight(attribution)
    w = (alpha * weight)[..., None]
    grey = np.repeat(crop[..., None].astype(np.float64), 3, axis=-1)
    return _png(np.rint(grey * (1.0 - w) + colour * w).astype(np.uint8))
