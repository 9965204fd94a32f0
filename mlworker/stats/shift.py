"""Performance shift between the internal and the external test set: internal − external, with bootstrap CIs.

The two sets are independent samples (other hands, other sites or scanners), so each is resampled on its own:
hands drawn with replacement within each class of each set (stratified), the metrics computed on each
replicate pair and the difference's percentile interval taken. Inputs are hand-level (one score per hand).
"""

from __future__ import annotations

import numpy as np

from mlworker.finite import json_safe

from .bootstrap import BOOTSTRAP_METRICS, _check_n_boot, bootstrap_replicates
from .metrics import binary_metrics

__all__ = ["performance_shift"]


def performance_shift(internal_true, internal_score, external_true, external_score, *, threshold: float = 0.5,
                      n_boot: int = 2000, seed: int = 0, level: float = 0.95) -> dict:
    """{metric: {internal, external, difference, low, high, n_undefined}} plus the resampling's description.

    `difference` is internal − external on all hands; its interval comes from `n_boot` replicate pairs, the
    internal set drawn as `bootstrap_replicates(..., seed=seed)` and the external as `seed + 1` (independent
    streams). Replicates where a metric is undefined in either set (0/0) are left out and counted; a bound
    with no defined replicate is None (JSON has no NaN).
    """
    level = float(level)
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    n_boot = _check_n_boot(n_boot)
    internal = bootstrap_replicates(internal_true, internal_score, threshold=threshold, n_boot=n_boot, seed=seed)
    external = bootstrap_replicates(external_true, external_score, threshold=threshold, n_boot=n_boot,
                                    seed=seed + 1)
    point_internal = binary_metrics(np.asarray(internal_true), np.asarray(internal_score, float), threshold=threshold)
    point_external = binary_metrics(np.asarray(external_true), np.asarray(external_score, float), threshold=threshold)
    q = [50.0 * (1.0 - level), 50.0 * (1.0 + level)]
    result: dict = {}
    for name in BOOTSTRAP_METRICS:
        difference = internal[name] - external[name]
        defined = difference[~np.isnan(difference)]
        low, high = np.percentile(defined, q) if defined.size else (np.nan, np.nan)
        result[name] = {"internal": float(point_internal[name]), "external": float(point_external[name]),
                        "difference": float(point_internal[name] - point_external[name]),
                        "low": float(low), "high": float(high), "n_undefined": int(difference.size - defined.size)}
    result.update(kind="hands, each set resampled independently, stratified by class", n_boot=n_boot, seed=seed,
                  level=level, threshold=float(threshold), n_internal=int(np.size(internal_true)),
                  n_external=int(np.size(external_true)))
    return json_safe(result)
