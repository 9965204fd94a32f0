"""Cut-off selection for a continuous score (e.g. the manual CSA baseline)."""

from __future__ import annotations

import numpy as np

from .metrics import _roc_counts

__all__ = ["youden_threshold"]


def youden_threshold(y_true, y_score) -> dict[str, float]:
    """Cut-off maximising Youden's J = sens + spec - 1 (positive when score >= it), as pROC reports it.

    The best operating point lies between two adjacent observed scores; the cut-off is their midpoint
    (pROC's convention), so applying it to new hands does not depend on which training score happened
    to sit at the boundary. `observed_score` is the lowest training score on the positive side; when
    every score is positive (the lowest one is best) there is no lower neighbour and the cut-off is that
    score. Among equal J the highest cut-off (the more specific rule) wins. Higher scores must mean CTS:
    negate otherwise. Choose it on training hands, then apply the returned threshold to test hands.
    """
    thresholds, fps, tps, n_neg, n_pos = _roc_counts(y_true, y_score)
    # J * n_neg * n_pos in integers, so that equal J values tie exactly (no float round-off).
    j_scaled = tps * n_neg - fps * n_pos
    best = int(np.argmax(j_scaled))  # thresholds descend: the first maximum is the highest one
    sens = tps[best] / n_pos
    spec = (n_neg - fps[best]) / n_neg
    observed = float(thresholds[best])
    cut = (observed + float(thresholds[best + 1])) / 2.0 if best + 1 < thresholds.size else observed
    return {
        "threshold": cut,
        "observed_score": observed,
        "j": float(j_scaled[best] / (n_neg * n_pos)),
        "sensitivity": float(sens),
        "specificity": float(spec),
    }
