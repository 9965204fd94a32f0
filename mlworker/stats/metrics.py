"""Binary classification metrics for the CTS study (positive class = 1 = CTS).

Conventions shared by every function here:
- labels are 0/1 (bools and 0.0/1.0 accepted); a frame is called positive when score >= threshold;
- a ratio whose denominator is 0 (e.g. precision with no predicted positive) is nan, never an exception;
- AUC is the Mann-Whitney probability P(score_pos > score_neg) + 0.5 * P(tie);
- anything that reports an AUC or ROC refuses data with only one class (ValueError).
"""

from __future__ import annotations

import math
import numpy as np
from scipy.stats import rankdata

__all__ = [
    "confusion",
    "binary_metrics",
    "roc_curve",
    "roc_auc",
    "aggregate_by_cluster",
]


def _labels(y_true, *, name: str = "y_true") -> np.ndarray:
    """Validate a 1-D array of 0/1 labels and return it as int8."""
    y = np.asarray(y_true)
    if y.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {y.shape}")
    if y.size == 0:
        raise ValueError(f"{name} is empty")
    if y.dtype == bool:
        return y.astype(np.int8)
    if not np.issubdtype(y.dtype, np.number):
        raise ValueError(f"{name} must be numeric 0/1 labels, got dtype {y.dtype}")
    bad = ~np.isin(y, (0, 1))
    if bad.any():
        shown = np.unique(y[bad])[:5].tolist()
        raise ValueError(f"{name} must contain only 0 and 1 (1 = CTS); found {shown}")
    return y.astype(np.int8)


def _scores(y_score, n: int, *, name: str = "y_score") -> np.ndarray:
    """Validate a 1-D float array of length n without NaN/inf."""
    s = np.asarray(y_score, dtype=float)
    if s.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {s.shape}")
    if s.shape[0] != n:
        raise ValueError(f"length mismatch: y_true has {n} items, {name} has {s.shape[0]}")
    if not np.isfinite(s).all():
        raise ValueError(f"{name} contains {int((~np.isfinite(s)).sum())} NaN or infinite value(s)")
    return s


def _both_classes(y: np.ndarray) -> tuple[int, int]:
    """Return (n_neg, n_pos), refusing data where one class is absent."""
    n_pos = int(y.sum())
    n_neg = int(y.size - n_pos)
    if n_pos == 0 or n_neg == 0:
        present = "1 (CTS)" if n_pos else "0 (control)"
        raise ValueError(f"only one class present in y_true (all {present}); need both 0 and 1")
    return n_neg, n_pos


def _threshold(threshold: float) -> float:
    """Validate a decision threshold (any non-NaN float)."""
    t = float(threshold)
    if math.isnan(t):
        raise ValueError("threshold is NaN")
    return t


def _ratio(num, den):
    """num / den elementwise, nan where den == 0 (the documented 0/0 convention)."""
    num = np.asarray(num, dtype=float)
    den = np.asarray(den, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den == 0, np.nan, num / np.where(den == 0, 1.0, den))


def _metrics_from_counts(tn, fp, fn, tp) -> dict[str, np.ndarray]:
    """Accuracy, precision, recall, specificity, f1 from (arrays of) confusion counts."""
    tn, fp, fn, tp = (np.asarray(v, dtype=float) for v in (tn, fp, fn, tp))
    return {
        "accuracy": _ratio(tp + tn, tp + tn + fp + fn),
        "precision": _ratio(tp, tp + fp),
        "recall": _ratio(tp, tp + fn),
        "specificity": _ratio(tn, tn + fp),
        # 2TP/(2TP+FP+FN) equals the harmonic mean of precision and recall and is 0 (not nan)
        # when TP = 0 but positives exist, as in scikit-learn >= 1.3.
        "f1": _ratio(2 * tp, 2 * tp + fp + fn),
    }


def confusion(y_true, y_pred) -> np.ndarray:
    """2x2 counts [[tn, fp], [fn, tp]] (scikit-learn layout; rows = truth, columns = prediction)."""
    y = _labels(y_true)
    p = _labels(y_pred, name="y_pred")
    if p.size != y.size:
        raise ValueError(f"length mismatch: y_true has {y.size} items, y_pred has {p.size}")
    # Index 2*truth + prediction enumerates tn, fp, fn, tp.
    return np.bincount(2 * y.astype(np.intp) + p, minlength=4).reshape(2, 2)


def roc_auc(y_true, y_score) -> float:
    """ROC AUC by the Mann-Whitney U statistic on midranks (ties between classes count 1/2)."""
    y = _labels(y_true)
    s = _scores(y_score, y.size)
    n_neg, n_pos = _both_classes(y)
    ranks = rankdata(s)  # midranks, so tied pairs contribute exactly one half
    u = ranks[y == 1].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def binary_metrics(y_true, y_score, *, threshold: float = 0.5) -> dict[str, float]:
    """Metrics at `threshold` (positive when score >= threshold) plus threshold-free AUC; 0/0 -> nan."""
    y = _labels(y_true)
    s = _scores(y_score, y.size)
    _both_classes(y)
    t = _threshold(threshold)
    (tn, fp), (fn, tp) = confusion(y, (s >= t).astype(np.int8))
    out = {k: float(v) for k, v in _metrics_from_counts(tn, fp, fn, tp).items()}
    out["auc"] = roc_auc(y, s)
    out.update(tn=int(tn), fp=int(fp), fn=int(fn), tp=int(tp), n=int(y.size), threshold=t)
    return out


def _roc_counts(y_true, y_score):
    """Distinct scores (descending) with integer FP/TP counts at ">= score", plus n_neg, n_pos."""
    y = _labels(y_true)
    s = _scores(y_score, y.size)
    n_neg, n_pos = _both_classes(y)
    order = np.argsort(-s, kind="stable")
    s_sorted = s[order]
    # Last index of each run of equal scores: the operating point "positive when score >= s".
    last = np.r_[np.flatnonzero(np.diff(s_sorted) != 0), s_sorted.size - 1]
    tps = np.cumsum(y[order], dtype=np.int64)[last]
    fps = (last + 1) - tps
    return s_sorted[last], fps, tps, n_neg, n_pos


def roc_curve(y_true, y_score) -> dict[str, list[float]]:
    """ROC points at every distinct score (descending), starting at (0, 0) with threshold +inf."""
    thresholds, fps, tps, n_neg, n_pos = _roc_counts(y_true, y_score)
    # No collinear-point dropping: every distinct threshold is kept (sklearn drop_intermediate=False).
    # The leading +inf threshold (nothing positive) is not valid strict JSON; serialisers must map it.
    return {
        "fpr": [0.0, *(fps / n_neg).tolist()],
        "tpr": [0.0, *(tps / n_pos).tolist()],
        "thresholds": [math.inf, *thresholds.tolist()],
    }


def _cluster_codes(clusters, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted unique cluster ids and each item's index into them."""
    c = np.asarray(clusters)
    if c.ndim != 1:
        raise ValueError(f"clusters must be 1-D, got shape {c.shape}")
    if c.shape[0] != n:
        raise ValueError(f"length mismatch: y_true has {n} items, clusters has {c.shape[0]}")
    if np.issubdtype(c.dtype, np.floating) and np.isnan(c).any():
        raise ValueError("clusters contains NaN ids")
    if c.dtype == object and any(v is None for v in c):
        raise ValueError("clusters contains None ids")
    try:
        ids, codes = np.unique(c, return_inverse=True)
    except TypeError as exc:  # e.g. a mix of str and int ids cannot be ordered
        raise ValueError(f"cluster ids must be mutually comparable (one type): {exc}") from exc
    return ids, codes.reshape(-1)


def _cluster_labels(y: np.ndarray, codes: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Label of each cluster, refusing clusters whose frames disagree."""
    n_frames = np.bincount(codes, minlength=ids.size)
    n_pos = np.bincount(codes, weights=y, minlength=ids.size)
    mixed = np.flatnonzero((n_pos > 0) & (n_pos < n_frames))
    if mixed.size:
        shown = ids[mixed[:5]].tolist()
        raise ValueError(f"{mixed.size} cluster(s) have frames with different labels, e.g. {shown}")
    return (n_pos > 0).astype(np.int8)


def aggregate_by_cluster(
    y_true, y_score, clusters
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-hand (cluster) label and mean frame probability; ids sorted, mixed-label hands refused."""
    y = _labels(y_true)
    s = _scores(y_score, y.size)
    ids, codes = _cluster_codes(clusters, y.size)
    labels = _cluster_labels(y, codes, ids)
    counts = np.bincount(codes, minlength=ids.size)
    means = np.bincount(codes, weights=s, minlength=ids.size) / counts
    return ids, labels.astype(np.int64), means
