"""DeLong's test for correlated ROC AUCs, fast midrank algorithm of Sun & Xu (2014), and its clustered form.

DeLong, DeLong & Clarke-Pearson (1988) estimate the AUC covariance from structural components;
Sun & Xu (IEEE SPL 21(11):1389-1393) obtain those components from three midrank computations
per model, so the cost is O(n log n) instead of O(m * n).

Frames of one hand are not independent: copying every case five times leaves the AUC unchanged but
shrinks DeLong's variance five-fold. With `clusters` (a hand id per frame) the covariance is Obuchowski's
(Biometrics 1997; 53:567-578) nonparametric estimator for clustered ROC data, built from the same
structural components summed per cluster; with one unit per cluster it equals DeLong's exactly.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import norm, rankdata

from .calibration import _two_sided_z
from .metrics import _labels, _scores

__all__ = ["delong_auc_covariance", "delong_test", "delong_ci", "TOO_FEW_FOR_DELONG", "ZERO_SE_NOTE"]

TOO_FEW_FOR_DELONG = "DeLong needs at least 2 positives and 2 negatives, got {} and {}"
ZERO_SE_NOTE = ("The standard error of the difference is 0 (identical or perfectly separating scores): "
                "the test is undefined, so no z or p-value is given.")


def _score_matrix(y_true, scores) -> tuple[np.ndarray, np.ndarray]:
    """Validate labels and a (k_models, n) score matrix (1-D means one model)."""
    y = _labels(y_true)
    s = np.asarray(scores, dtype=float)
    if s.ndim == 1:
        s = s[None, :]
    if s.ndim != 2:
        raise ValueError(f"scores must be (k_models, n), got shape {s.shape}")
    for row in s:
        _scores(row, y.size, name="scores")
    n_pos = int(y.sum())
    n_neg = y.size - n_pos
    if n_pos < 2 or n_neg < 2:
        raise ValueError(TOO_FEW_FOR_DELONG.format(n_pos, n_neg))
    return y, s


def delong_auc_covariance(y_true, scores, clusters=None) -> tuple[np.ndarray, np.ndarray]:
    """AUCs (k,) and their covariance (k, k) for k models scored on the same cases.

    Without `clusters`: DeLong's covariance (cases independent). With `clusters` (one id per case):
    Obuchowski's clustered covariance, S10/N + S01/M + (S11 + S11')/(N M), from the per-cluster sums of
    the structural components.
    """
    y, s = _score_matrix(y_true, scores)
    pos = s[:, y == 1]
    neg = s[:, y == 0]
    m, n = pos.shape[1], neg.shape[1]
    # Midranks within positives, within negatives, and over all cases (Sun & Xu, eq. 9-11).
    tx = rankdata(pos, axis=1)
    ty = rankdata(neg, axis=1)
    tz = rankdata(np.concatenate([pos, neg], axis=1), axis=1)
    aucs = tz[:, :m].sum(axis=1) / (m * n) - (m + 1.0) / (2.0 * n)
    v10 = (tz[:, :m] - tx) / n  # per positive: share of negatives it beats (ties 1/2)
    v01 = 1.0 - (tz[:, m:] - ty) / m  # per negative: share of positives that beat it
    if clusters is None:
        cov = np.atleast_2d(np.cov(v10)) / m + np.atleast_2d(np.cov(v01)) / n
        return aucs, cov
    return aucs, _clustered_covariance(y, aucs, v10, v01, clusters)


def _clustered_covariance(y: np.ndarray, aucs: np.ndarray, v10: np.ndarray, v01: np.ndarray, clusters) -> np.ndarray:
    """Obuchowski (1997) eq. 3-5, for k models at once."""
    ids = np.asarray(clusters)
    if ids.shape != y.shape:
        raise ValueError(f"clusters must have one id per case ({y.size}), got shape {ids.shape}")
    _, index = np.unique(ids, return_inverse=True)
    n_clusters = int(index.max()) + 1
    k = aucs.size
    pos_index, neg_index = index[y == 1], index[y == 0]
    m_i = np.bincount(pos_index, minlength=n_clusters)  # positives per cluster
    n_i = np.bincount(neg_index, minlength=n_clusters)  # negatives per cluster
    n_pos, n_neg = int(m_i.sum()), int(n_i.sum())
    i10, i01 = int((m_i > 0).sum()), int((n_i > 0).sum())
    if i10 < 2 or i01 < 2:
        raise ValueError(f"the clustered AUC variance needs positives in at least 2 clusters and negatives in at "
                         f"least 2, got {i10} and {i01}")
    # Centred per-cluster sums (k, I): V10_i - m_i * AUC and V01_i - n_i * AUC.
    d10 = np.stack([np.bincount(pos_index, weights=v10[j], minlength=n_clusters) for j in range(k)]) \
        - aucs[:, None] * m_i[None, :]
    d01 = np.stack([np.bincount(neg_index, weights=v01[j], minlength=n_clusters) for j in range(k)]) \
        - aucs[:, None] * n_i[None, :]
    s10 = i10 / ((i10 - 1) * n_pos) * (d10 @ d10.T)
    s01 = i01 / ((i01 - 1) * n_neg) * (d01 @ d01.T)
    s11 = n_clusters / (n_clusters - 1) * (d10 @ d01.T)  # zero when no cluster holds both classes
    return s10 / n_pos + s01 / n_neg + (s11 + s11.T) / (n_pos * n_neg)


def delong_test(y_true, score_a, score_b, *, clusters=None, level: float = 0.95) -> dict:
    """Two-sided test of AUC(a) = AUC(b) on paired scores, with the CI of the difference.

    `clusters` (one id per case, e.g. the hand of each frame) gives Obuchowski's clustered test. When the
    standard error is 0 the test is undefined: z and p are None and `note` says why.
    """
    aucs, cov = delong_auc_covariance(y_true, np.vstack([score_a, score_b]), clusters)
    diff = float(aucs[0] - aucs[1])
    var = float(cov[0, 0] + cov[1, 1] - 2.0 * cov[0, 1])
    se = math.sqrt(max(var, 0.0))  # clamp tiny negative round-off
    half = _z(level) * se
    result = {
        "auc_a": float(aucs[0]),
        "auc_b": float(aucs[1]),
        "difference": diff,
        "difference_ci": [diff - half, diff + half],
        "se": se,
        "method": "Obuchowski clustered" if clusters is not None else "DeLong",
    }
    # Relative to the AUCs' scale: a variance of 1e-33 is round-off, not information.
    if se <= 1e-12:
        return {**result, "z": None, "p_value": None, "note": ZERO_SE_NOTE}
    z = diff / se
    return {**result, "z": float(z), "p_value": float(2.0 * norm.sf(abs(z)))}


def _z(level: float) -> float:
    level = float(level)
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    return _two_sided_z(level)


def delong_ci(y_true, score, level: float = 0.95, *, clusters=None) -> tuple[float, float]:
    """Wald interval AUC +- z * SE (DeLong, or Obuchowski's clustered SE with `clusters`), clipped to [0, 1]."""
    z = _z(level)
    aucs, cov = delong_auc_covariance(y_true, score, clusters)
    half = z * math.sqrt(max(float(cov[0, 0]), 0.0))
    auc = float(aucs[0])
    return max(0.0, auc - half), min(1.0, auc + half)
