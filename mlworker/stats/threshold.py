"""Cut-off selection for a continuous score (e.g. the manual CSA baseline)."""

from __future__ import annotations

import numpy as np

from .metrics import _roc_counts

__all__ = ["youden_threshold"]


def youden_threshold(y_true, y_score) -> dict[str, float]:
    """Observed score maximising Youden's J = sens + spec - 1 (positive when score >= it).

    Candidates are the ROC's distinct scores (the +inf start is excluded); among equal J the
    highest threshold (the more specific rule) wins. Higher scores must mean CTS: negate otherwise.
    Choose it on training hands, then apply the returned threshold to test hands.
    """
    thresholds, fps, tps, n_neg, n_pos = _roc_counts(y_true, y_score)
    # J * n_neg * n_pos in integers, so that equal J values tie exactly (no float round-off).
    j_scaled = tps * n_neg - fps * n_pos
    best = int(np.argmax(j_scaled))  # thresholds descend: the first maximum is the highest one
    sens = tps[best] / n_pos
    spec = (n_neg - fps[best]) / n_neg
    return {
        "threshold": float(thresholds[best]),
        "j": float(j_scaled[best] / (n_neg * n_pos)),
        "sensitivity": float(sens),
        "specificity": float(spec),
    }
