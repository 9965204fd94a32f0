"""Two-group comparisons (e.g. CSA of CTS vs control hands)."""

from __future__ import annotations

import numpy as np
from scipy.stats import mannwhitneyu, norm

__all__ = ["mann_whitney"]


def _sample(x, name: str) -> np.ndarray:
    """Validate a non-empty 1-D finite sample."""
    a = np.asarray(x, dtype=float)
    if a.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {a.shape}")
    if a.size == 0:
        raise ValueError(f"{name} is empty")
    if not np.isfinite(a).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return a


# As R's wilcox.test: the exact null distribution below this size when there are no ties, otherwise the
# normal approximation with tie and continuity corrections.
EXACT_BELOW = 50


def mann_whitney(x, y, *, level: float = 0.95) -> dict:
    """Two-sided Mann-Whitney U with its stated convention, and the Hodges-Lehmann shift with a CI.

    u is x's U; rank_biserial = 2u/(nx*ny) - 1 (> 0 means x tends to exceed y; it equals
    2 * P(x > y) + P(x = y) - 1). The p-value is exact when both groups have fewer than EXACT_BELOW
    values and no value is tied, else asymptotic (normal, tie-corrected, continuity-corrected): the
    convention of R's wilcox.test, named in `method`. The Hodges-Lehmann shift is the median of the
    pairwise differences x - y; its distribution-free CI takes the order statistics of those
    differences at the Mann-Whitney critical value, from the normal approximation
    (Hollander & Wolfe, Nonparametric Statistical Methods, 3rd ed., section 4.3).
    """
    a = _sample(x, "x")
    b = _sample(y, "y")
    level = float(level)
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    pooled = np.concatenate([a, b])
    ties = np.unique(pooled).size < pooled.size
    exact = not ties and a.size < EXACT_BELOW and b.size < EXACT_BELOW
    res = mannwhitneyu(a, b, alternative="two-sided", method="exact" if exact else "asymptotic",
                       use_continuity=True)
    u = float(res.statistic)
    shift, low, high = _hodges_lehmann(a, b, level)
    return {
        "u": u,
        "p_value": float(res.pvalue),
        "method": "exact" if exact else "asymptotic (normal approximation, tie- and continuity-corrected)",
        "n_x": int(a.size),
        "n_y": int(b.size),
        "median_x": float(np.median(a)),
        "median_y": float(np.median(b)),
        "rank_biserial": 2.0 * u / (a.size * b.size) - 1.0,
        "hodges_lehmann_shift": shift,
        "hodges_lehmann_ci": [low, high],
        "level": level,
    }


def _hodges_lehmann(a: np.ndarray, b: np.ndarray, level: float) -> tuple[float, float, float]:
    diffs = np.sort((a[:, None] - b[None, :]).ravel())
    m, n = a.size, b.size
    z = norm.ppf(0.5 + level / 2.0)
    # C: how many differences to cut from each end (at least one, so the interval is finite).
    c = int(np.floor(m * n / 2.0 - z * np.sqrt(m * n * (m + n + 1) / 12.0)))
    c = min(max(c, 1), (diffs.size + 1) // 2)
    return float(np.median(diffs)), float(diffs[c - 1]), float(diffs[diffs.size - c])
