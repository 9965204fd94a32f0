"""Attribution maps measured against the nerve: outline → crop, nerve and perineural-ring masks, shares.

Coordinates follow `mlworker.media.geometry`: a point (x, y) is in pixels and pixel i covers [i, i + 1),
so a pixel's centre is at i + 0.5. Masks are (S, S) bool arrays indexed [row, column] = [y, x].
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage
from skimage.draw import polygon as fill_polygon

__all__ = [
    "REGIONS",
    "attribution_shares",
    "nerve_mask",
    "outline_to_crop",
    "ring_mask",
]

REGIONS = ("nerve", "ring", "outside")


def _points(points, *, name: str) -> np.ndarray:
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise ValueError(f"{name} must be a (K, 2) array of (x, y) points, got shape {pts.shape}")
    if not np.isfinite(pts).all():
        raise ValueError(f"{name} must hold finite coordinates")
    return pts


def _size(size) -> int:
    if isinstance(size, bool) or int(size) != size or size < 1:
        raise ValueError(f"the crop size must be a positive whole number of pixels, got {size!r}")
    return int(size)


def outline_to_crop(points, box: tuple[int, int, int, int], size: int) -> np.ndarray:
    """Map (K, 2) frame-pixel (x, y) points into the size × size crop that `mlworker.ml.crop_image` cuts from box.

    crop_image copies box (x, y, w, h) as is (the clamping into the frame happened when the box was made,
    in `mlworker.media.geometry.crop_box`; any part beyond the frame is zero padding) and resizes w × h to
    size × size with OpenCV, which aligns pixel centres: in continuous coordinates that is a pure scale of
    size / w across and size / h down from the box's top-left corner.
    """
    pts = _points(points, name="points")
    size = _size(size)
    x, y, w, h = (int(v) for v in box)
    if w <= 0 or h <= 0:
        raise ValueError(f"Crop box {box} has no area; boxes are (x, y, width, height) in pixels.")
    scale = np.array([size / w, size / h])
    return (pts - np.array([x, y], dtype=np.float64)) * scale


def nerve_mask(points_crop, size: int) -> np.ndarray:
    """Pixels of the size × size crop whose centre lies inside the outline (crop-pixel (x, y) points)."""
    pts = _points(points_crop, name="points_crop")
    size = _size(size)
    if len(pts) < 3:
        raise ValueError(f"a nerve outline needs at least 3 points, got {len(pts)}")
    # skimage tests integer (row, col) positions; shifting by half a pixel tests the pixel centres instead.
    rr, cc = fill_polygon(pts[:, 1] - 0.5, pts[:, 0] - 0.5, shape=(size, size))
    mask = np.zeros((size, size), dtype=bool)
    mask[rr, cc] = True
    return mask


def _mask(mask, *, name: str) -> np.ndarray:
    m = np.asarray(mask)
    if m.ndim != 2:
        raise ValueError(f"{name} must be a 2-D mask, got shape {m.shape}")
    if m.dtype != bool:
        raise ValueError(f"{name} must be a bool mask, got dtype {m.dtype}")
    return m


def ring_mask(nerve, width_px: float) -> np.ndarray:
    """The band of pixels outside the nerve whose centre lies within width_px of the outline.

    A nerve pixel's centre sits half a pixel inside the outline, so an outside pixel whose centre is d
    from the nearest nerve-pixel centre is about d - 0.5 from the outline: the band is d <= width_px + 0.5
    (a Euclidean dilation by that disc, minus the nerve). That is exact along edges parallel to the pixel
    grid and within a pixel of width elsewhere (the mask no longer knows where between two pixel centres
    the outline ran); the area is about perimeter × width_px.
    """
    m = _mask(nerve, name="nerve")
    width = float(width_px)
    if not (math.isfinite(width) and width > 0):
        raise ValueError(f"the ring width must be a positive number of pixels, got {width_px!r}")
    if not m.any():
        # No nerve in the crop: there is no tissue "around" it either.
        return np.zeros_like(m)
    distance = ndimage.distance_transform_edt(~m)
    return (~m) & (distance <= width + 0.5)


def _pointing(attribution: np.ndarray, labels: np.ndarray) -> str:
    """Region holding the map's maximum; a plateau (e.g. occlusion blocks) votes by its pixels."""
    peak = attribution.max()
    at_peak = attribution >= peak - 1e-6 * max(abs(float(peak)), 1e-30)
    votes = np.bincount(labels[at_peak], minlength=3)
    # An exact tie between regions goes to the region farthest from the nerve, so ties never favour the
    # hypothesis that the model looks at the nerve.
    best = max(range(3), key=lambda i: (votes[i], i))
    return REGIONS[best]


def attribution_shares(attribution, nerve, ring) -> dict:
    """Shares of the map's positive attribution in nerve, ring and outside, beside each region's area share.

    Returns {"nerve", "ring", "outside": share of the positive mass (sums to 1), "nerve_area", "ring_area",
    "outside_area": share of the crop's pixels, "pointing": region of the maximum, "positive_mass": sum of
    the positive part, "reason": None}. A map with no positive attribution has nothing to share out: the
    shares and "pointing" are None and "reason" says why (the area shares are still given).
    """
    a = np.asarray(attribution, dtype=np.float64)
    n = _mask(nerve, name="nerve")
    r = _mask(ring, name="ring")
    if a.ndim != 2 or a.shape != n.shape or a.shape != r.shape:
        raise ValueError(
            f"attribution {a.shape}, nerve {n.shape} and ring {r.shape} must be the same 2-D crop shape"
        )
    if not np.isfinite(a).all():
        raise ValueError("the attribution map holds NaN or infinite values; recompute it")
    if (n & r).any():
        raise ValueError("the ring overlaps the nerve; build it with ring_mask(nerve, width_px)")
    labels = np.full(a.shape, 2, dtype=np.int64)
    labels[r] = 1
    labels[n] = 0
    area = np.bincount(labels.ravel(), minlength=3) / labels.size
    result = {f"{region}_area": float(area[i]) for i, region in enumerate(REGIONS)}
    positive = np.clip(a, 0.0, None)
    mass = float(positive.sum())
    if mass <= 0.0:
        result.update(
            {region: None for region in REGIONS},
            pointing=None,
            positive_mass=0.0,
            reason="the map has no positive attribution for the CTS class, so there is no share to measure",
        )
        return result
    shares = np.bincount(labels.ravel(), weights=positive.ravel(), minlength=3) / mass
    result.update(
        {region: float(shares[i]) for i, region in enumerate(REGIONS)},
        pointing=_pointing(a, labels),
        positive_mass=mass,
        reason=None,
    )
    return result
