"""Two-group comparisons (e.g. CSA of CTS vs control hands)."""

from __future__ import annotations

import numpy as np
from scipy.stats import mannwhitneyu

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


def mann_whitney(x, y) -> dict[str, float]:
    """Two-sided Mann-Whitney U (scipy, method='auto'); u is x's U, rank_biserial = 2u/(nx*ny) - 1.

    rank_biserial > 0 means x tends to exceed y (it equals 2 * P(x > y) + P(x = y) - 1).
    """
    a = _sample(x, "x")
    b = _sample(y, "y")
    res = mannwhitneyu(a, b, alternative="two-sided")
    u = float(res.statistic)
    return {
        "u": u,
        "p_value": float(res.pvalue),
        "n_x": int(a.size),
        "n_y": int(b.size),
        "median_x": float(np.median(a)),
        "median_y": float(np.median(b)),
        "rank_biserial": 2.0 * u / (a.size * b.size) - 1.0,
    }
