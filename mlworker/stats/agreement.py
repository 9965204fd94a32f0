"""Agreement between annotators: ICC(2,1), Bland-Altman, bounding-box IoU."""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence

import numpy as np
from scipy.stats import f as f_dist
from scipy.stats import t as t_dist

__all__ = ["Box", "icc_2_1", "bland_altman", "box_iou", "box_iou_many", "mean_pairwise_iou"]

# Mean squares below this share of the ratings' variance are round-off, not disagreement.
_RELATIVE_TOLERANCE = 1e-12

# (x, y, w, h) with (x, y) the top-left corner; a mapping with keys x, y, w, h is also accepted.
Box = Sequence[float] | Mapping[str, float]


def icc_2_1(ratings, *, level: float = 0.95, drop_incomplete: bool = False) -> dict[str, float]:
    """ICC(2,1): two-way random effects, absolute agreement, single rater, with exact F-based CI.

    Shrout & Fleiss (1979) ICC(2,1) = McGraw & Wong (1996) ICC(A,1), case 2A; CI by McGraw &
    Wong's formulas (Satterthwaite df). Subjects with a missing rating are refused, or dropped
    when drop_incomplete=True (n then counts complete subjects only).
    """
    x = np.asarray(ratings, dtype=float)
    if x.ndim != 2:
        raise ValueError(f"ratings must be (n_subjects, k_raters), got shape {x.shape}")
    if np.isinf(x).any():
        raise ValueError("ratings contain infinite values")
    incomplete = np.isnan(x).any(axis=1)
    if incomplete.any():
        if not drop_incomplete:
            rows = np.flatnonzero(incomplete)[:5].tolist()
            raise ValueError(
                f"{int(incomplete.sum())} subject(s) have missing ratings (rows {rows}...); "
                "pass drop_incomplete=True to analyse complete subjects only"
            )
        x = x[~incomplete]
    n, k = x.shape
    if n < 2 or k < 2:
        raise ValueError(f"need at least 2 subjects and 2 raters, got {n} x {k}")
    level = float(level)
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")

    grand = x.mean()
    row_means, col_means = x.mean(axis=1), x.mean(axis=0)
    ss_rows = k * ((row_means - grand) ** 2).sum()
    ss_cols = n * ((col_means - grand) ** 2).sum()
    # Residuals computed directly: by subtraction (total - rows - columns) perfect agreement leaves round-off
    # of either sign instead of 0, which made two identical raters "undefined" and three give F ~ 1e16.
    residuals = x - row_means[:, None] - col_means[None, :] + grand
    ss_err = (residuals**2).sum()
    df1, df_cols, df2 = n - 1, k - 1, (n - 1) * (k - 1)
    msr, msc, mse = ss_rows / df1, ss_cols / df_cols, ss_err / df2
    scale = ((x - grand) ** 2).sum() / (n * k - 1)  # the ratings' overall variance: tolerances are relative to it
    if msr <= _RELATIVE_TOLERANCE * scale or scale == 0:
        raise ValueError("the subjects' mean ratings do not vary (every subject rated alike); ICC undefined")
    if mse <= _RELATIVE_TOLERANCE * scale:
        mse = 0.0  # raters agree perfectly up to a constant offset per rater

    icc = (msr - mse) / (msr + (k - 1) * mse + k * (msc - mse) / n)
    alpha = 1.0 - level
    if mse == 0.0:
        # No residual error: F is infinite and the F-based interval degenerates. With identical raters the
        # agreement is exactly 1; with constant offsets only the rater term remains (McGraw & Wong's CI with
        # MSE = 0: Satterthwaite df equal to the raters' df).
        f_value, p_value = math.inf, 0.0
        if msc <= _RELATIVE_TOLERANCE * scale:
            ci_low = ci_high = 1.0
            icc = 1.0
        else:
            f_low = f_dist.ppf(1.0 - alpha / 2.0, df1, df_cols)
            f_high = f_dist.ppf(1.0 - alpha / 2.0, df_cols, df1)
            ci_low = n * msr / (f_low * k * msc + n * msr)
            ci_high = n * f_high * msr / (k * msc + n * f_high * msr)
    else:
        f_value = msr / mse
        p_value = float(f_dist.sf(f_value, df1, df2))
        # McGraw & Wong (1996), case 2A: Satterthwaite df v for the mixed denominator.
        a = k * icc / (n * (1.0 - icc))
        b = 1.0 + k * icc * (n - 1) / (n * (1.0 - icc))
        v = (a * msc + b * mse) ** 2 / ((a * msc) ** 2 / df_cols + (b * mse) ** 2 / df2)
        f_low = f_dist.ppf(1.0 - alpha / 2.0, df1, v)
        f_high = f_dist.ppf(1.0 - alpha / 2.0, v, df1)
        denom = k * msc + (k * n - k - n) * mse
        ci_low = n * (msr - f_low * mse) / (f_low * denom + n * msr)
        ci_high = n * (f_high * msr - mse) / (denom + n * f_high * msr)
    return {
        "icc": float(icc),
        "ci_low": float(ci_low),
        "ci_high": float(ci_high),
        "f_value": float(f_value),
        "df1": int(df1),
        "df2": int(df2),
        "p_value": p_value,
        "n": int(n),
        "k": int(k),
        "ms_subjects": float(msr),
        "ms_raters": float(msc),
        "ms_error": float(mse),
    }


def bland_altman(a, b) -> dict:
    """Differences a - b: bias = mean, sd (ddof=1), limits bias +- 1.96 sd, 95% CIs of the bias and of each limit."""
    x = np.asarray(a, dtype=float)
    y = np.asarray(b, dtype=float)
    if x.ndim != 1 or y.ndim != 1:
        raise ValueError("a and b must be 1-D")
    if x.size != y.size:
        raise ValueError(f"length mismatch: a has {x.size} items, b has {y.size}")
    if x.size < 2:
        raise ValueError(f"need at least 2 paired measurements, got {x.size}")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError("a or b contains NaN or infinite values")
    d = x - y
    n = d.size
    bias = float(d.mean())
    sd = float(d.std(ddof=1))
    t = float(t_dist.ppf(0.975, n - 1))
    half = t * sd / math.sqrt(n)
    # Each limit's standard error is about sqrt(3 sd^2 / n) (Bland & Altman 1999, section 4.2).
    loa_half = t * sd * math.sqrt(3.0 / n)
    loa_low, loa_high = bias - 1.96 * sd, bias + 1.96 * sd  # 1.96 as in Bland & Altman (1986)
    return {
        "bias": bias,
        "sd": sd,
        "loa_low": loa_low,
        "loa_high": loa_high,
        "loa_low_ci": [loa_low - loa_half, loa_low + loa_half],
        "loa_high_ci": [loa_high - loa_half, loa_high + loa_half],
        "bias_ci_low": bias - half,
        "bias_ci_high": bias + half,
        "n": int(n),
        "means": ((x + y) / 2.0).tolist(),
        "differences": d.tolist(),
    }


def _box(box: Box, name: str) -> tuple[float, float, float, float]:
    """Normalise a box to floats (x, y, w, h) and check it."""
    if isinstance(box, Mapping):
        try:
            vals = tuple(float(box[key]) for key in ("x", "y", "w", "h"))
        except KeyError as exc:
            raise ValueError(f"{name} mapping needs keys x, y, w, h; missing {exc}") from exc
    else:
        if box is None or len(box) != 4:
            raise ValueError(f"{name} must be (x, y, w, h), got {box!r}")
        vals = tuple(float(v) for v in box)
    if not all(math.isfinite(v) for v in vals):
        raise ValueError(f"{name} has non-finite coordinates: {vals}")
    if vals[2] < 0 or vals[3] < 0:
        raise ValueError(f"{name} has negative width or height: {vals}")
    return vals


def box_iou(a: Box, b: Box) -> float:
    """Intersection over union of two (x, y, w, h) boxes; nan when both have zero area."""
    ax, ay, aw, ah = _box(a, "a")
    bx, by, bw, bh = _box(b, "b")
    iw = max(0.0, min(ax + aw, bx + bw) - max(ax, bx))
    ih = max(0.0, min(ay + ah, by + bh) - max(ay, by))
    inter = iw * ih
    union = aw * ah + bw * bh - inter
    return inter / union if union > 0 else math.nan


def box_iou_many(a, b) -> np.ndarray:
    """`box_iou` of each row of two (n, 4) arrays of (x, y, w, h) boxes, at once; nan where both are empty."""
    a, b = np.asarray(a, float).reshape(-1, 4), np.asarray(b, float).reshape(-1, 4)
    if a.shape != b.shape:
        raise ValueError(f"need two arrays of the same number of boxes, got {a.shape} and {b.shape}")
    if not (np.isfinite(a).all() and np.isfinite(b).all()) or (a[:, 2:] < 0).any() or (b[:, 2:] < 0).any():
        raise ValueError("boxes need finite coordinates and non-negative width and height")
    iw = np.clip(np.minimum(a[:, 0] + a[:, 2], b[:, 0] + b[:, 2]) - np.maximum(a[:, 0], b[:, 0]), 0.0, None)
    ih = np.clip(np.minimum(a[:, 1] + a[:, 3], b[:, 1] + b[:, 3]) - np.maximum(a[:, 1], b[:, 1]), 0.0, None)
    inter = iw * ih
    union = a[:, 2] * a[:, 3] + b[:, 2] * b[:, 3] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / np.where(union > 0, union, 1.0), np.nan)


def mean_pairwise_iou(boxes_by_rater: Mapping[str, Box]) -> float:
    """Mean IoU over all unordered pairs of raters' boxes for one image (needs >= 2 raters)."""
    if len(boxes_by_rater) < 2:
        raise ValueError(f"need boxes from at least 2 raters, got {len(boxes_by_rater)}")
    boxes = {r: _box(b, f"box of rater {r!r}") for r, b in boxes_by_rater.items()}
    ious = [box_iou(boxes[r], boxes[s]) for r, s in itertools.combinations(boxes, 2)]
    return float(np.mean(ious))
