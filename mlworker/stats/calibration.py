"""Calibration of predicted probabilities, and a binomial proportion's confidence interval."""

from __future__ import annotations

import functools
import math

import numpy as np
from scipy.stats import norm

__all__ = ["brier_score", "reliability_bins", "wilson_interval"]


def _outcomes_and_probabilities(y_true, y_prob, *, empty_ok: bool) -> tuple[np.ndarray, np.ndarray]:
    """0/1 outcomes and probabilities in [0, 1] as float arrays of one shape; ValueError otherwise.

    A NaN or out-of-range probability would otherwise fall outside every bin and vanish from the count.
    """
    y, p = np.asarray(y_true, float), np.asarray(y_prob, float)
    if y.shape != p.shape or (y.size == 0 and not empty_ok):
        raise ValueError(f"need two equal{'' if empty_ok else ', non-empty'} arrays, got {y.shape} and {p.shape}")
    if not np.isin(y, (0.0, 1.0)).all():
        raise ValueError("outcomes must be 0 or 1")
    outside = ~(np.isfinite(p) & (p >= 0) & (p <= 1))
    if outside.any():
        raise ValueError(f"probabilities must be finite and within [0, 1]; {int(outside.sum())} are not "
                         f"(the first: {p[outside][0]!r})")
    return y, p


def brier_score(y_true, y_prob) -> float:
    """Mean squared difference between the probability and the 0/1 outcome (0 is perfect, 0.25 is a coin)."""
    y, p = _outcomes_and_probabilities(y_true, y_prob, empty_ok=False)
    return float(np.mean((p - y) ** 2))


def reliability_bins(y_true, y_prob, n_bins: int = 10) -> list[dict]:
    """Equal-width probability bins: mean predicted probability, observed share of positives, count.

    Bins without a prediction are left out; the last bin includes 1.0.
    """
    if n_bins < 1:
        raise ValueError(f"n_bins must be at least 1, got {n_bins}")
    y, p = _outcomes_and_probabilities(y_true, y_prob, empty_ok=True)
    index = np.minimum((p * n_bins).astype(int), n_bins - 1)
    bins = []
    for b in range(n_bins):
        inside = index == b
        if inside.any():
            bins.append({"low": b / n_bins, "high": (b + 1) / n_bins, "n": int(inside.sum()),
                         "mean_predicted": float(p[inside].mean()), "observed": float(y[inside].mean())})
    return bins


def wilson_interval(successes: int, n: int, level: float = 0.95) -> tuple[float, float] | None:
    """Wilson score interval of a proportion (sensible near 0 and 1 and for small n); None when n is 0."""
    if n == 0:
        return None
    if not 0 <= successes <= n:
        raise ValueError(f"successes must be from 0 to n={n}, got {successes}")
    z = _two_sided_z(level)
    share = successes / n
    centre = (share + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(share * (1 - share) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


@functools.lru_cache(maxsize=8)
def _two_sided_z(level: float) -> float:
    """z of a two-sided `level` interval; cached, as scipy's ppf costs more than the interval around it."""
    return float(norm.ppf(0.5 + level / 2))
