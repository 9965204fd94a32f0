"""Stratified (optionally cluster) percentile bootstrap of the study's binary metrics, vectorised.

There is no Python loop over replicates: for each class stratum the drawn unit indices form one
(n_boot, n_units) matrix, turned (in blocks of rows, to bound memory) into per-replicate
multiplicities of every distinct score (bincount with row offsets); confusion counts are sums of
those multiplicities and the AUC is the Mann-Whitney count from cumulative negative histograms.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .metrics import (
    _both_classes,
    _cluster_codes,
    _cluster_labels,
    _labels,
    _metrics_from_counts,
    _scores,
    _threshold,
    binary_metrics,
)

__all__ = [
    "BOOTSTRAP_METRICS",
    "bootstrap_ci",
    "bootstrap_mean_ci",
    "bootstrap_mean_replicates",
    "bootstrap_replicates",
]

BOOTSTRAP_METRICS = ("accuracy", "precision", "recall", "specificity", "f1", "auc")

# Rows of replicates handled per block: bounds temporary memory to ~this many cells per array.
_BLOCK_CELLS = 1 << 20


@dataclass(frozen=True)
class _Stratum:
    """One class's frames sorted by score, with the resampling unit (frame or hand) of each."""

    n_units: int
    unit_of_frame: np.ndarray  # (n_frames,) unit index of each score-sorted frame
    values: np.ndarray  # distinct scores, ascending
    starts: np.ndarray | None  # start of each run of tied scores in sorted order; None if no ties


def _stratum(scores: np.ndarray, units: np.ndarray, n_units: int) -> _Stratum:
    """Build the sorted layout for one class (units: unit index per frame, original order)."""
    order = np.argsort(scores, kind="stable")
    s = scores[order]
    new_run = np.r_[True, s[1:] != s[:-1]]
    starts = np.flatnonzero(new_run)
    ties = starts.size < s.size
    return _Stratum(n_units, units[order], s[starts], starts if ties else None)


def _draw_multiplicities(draws: np.ndarray, st: _Stratum) -> np.ndarray:
    """(rows, n_distinct_scores) count of each distinct score among the frames drawn per row."""
    rows = draws.shape[0]
    offsets = (np.arange(rows, dtype=np.int64) * st.n_units)[:, None]
    per_unit = np.bincount((draws + offsets).ravel(), minlength=rows * st.n_units)
    per_frame = per_unit.reshape(rows, st.n_units)[:, st.unit_of_frame]
    if st.starts is None:
        return per_frame
    return np.add.reduceat(per_frame, st.starts, axis=1)


def _validated(y_true, y_score, clusters):
    """Shared input checks; returns labels, scores, strata and the bootstrap kind."""
    y = _labels(y_true)
    s = _scores(y_score, y.size)
    _both_classes(y)
    strata = []
    if clusters is None:
        kind = "frames"
        for c in (0, 1):
            idx = np.flatnonzero(y == c)
            strata.append(_stratum(s[idx], np.arange(idx.size), idx.size))
        n_clusters = None
    else:
        kind = "hands (cluster)"
        ids, codes = _cluster_codes(clusters, y.size)
        hand_label = _cluster_labels(y, codes, ids)
        n_clusters = int(ids.size)
        for c in (0, 1):
            hands = np.flatnonzero(hand_label == c)  # this stratum's hands, in sorted-id order
            local = np.full(ids.size, -1, dtype=np.int64)
            local[hands] = np.arange(hands.size)
            idx = np.flatnonzero(y == c)
            strata.append(_stratum(s[idx], local[codes[idx]], hands.size))
    return y, s, strata, kind, n_clusters


def _check_n_boot(n_boot: int) -> int:
    """Validate the replicate count."""
    if isinstance(n_boot, bool) or int(n_boot) != n_boot or n_boot < 1:
        raise ValueError(f"n_boot must be a positive integer, got {n_boot!r}")
    return int(n_boot)


def bootstrap_replicates(
    y_true,
    y_score,
    *,
    threshold: float = 0.5,
    n_boot: int = 2000,
    seed: int = 0,
    clusters=None,
) -> dict[str, np.ndarray]:
    """Per-replicate metrics (n_boot,) plus frame counts n_neg/n_pos; stratified by class.

    Draw protocol (fixed, so results are reproducible from `seed`): rng = default_rng(seed); for
    class 0 then class 1, draws = rng.integers(0, n_units, size=(n_boot, n_units)), where units
    are that class's frames in input order, or its hands (sorted ids) when `clusters` is given, in
    which case every frame of a drawn hand enters the replicate.
    """
    n_boot = _check_n_boot(n_boot)
    t = _threshold(threshold)
    _, _, strata, _, _ = _validated(y_true, y_score, clusters)
    return _replicates(strata, t, n_boot, seed)


def _replicates(strata: list[_Stratum], t: float, n_boot: int, seed: int) -> dict[str, np.ndarray]:
    """Vectorised core of bootstrap_replicates on validated strata."""
    rng = np.random.default_rng(seed)
    draws = [rng.integers(0, st.n_units, size=(n_boot, st.n_units)) for st in strata]
    neg, pos = strata
    # Distinct scores >= t form a suffix of each ascending value list.
    k_neg = int(np.searchsorted(neg.values, t, side="left"))
    k_pos = int(np.searchsorted(pos.values, t, side="left"))
    # Where each distinct positive score falls among the distinct negative scores.
    lt = np.searchsorted(neg.values, pos.values, side="left")
    le = np.searchsorted(neg.values, pos.values, side="right")
    cross_ties = bool((lt != le).any())

    out = {k: np.empty(n_boot) for k in ("tn", "fp", "fn", "tp", "auc")}
    width = max(neg.unit_of_frame.size, pos.unit_of_frame.size, neg.n_units, pos.n_units)
    block = max(1, _BLOCK_CELLS // width)
    for r0 in range(0, n_boot, block):
        r1 = min(n_boot, r0 + block)
        h_neg = _draw_multiplicities(draws[0][r0:r1], neg)
        h_pos = _draw_multiplicities(draws[1][r0:r1], pos)
        n0 = h_neg.sum(axis=1)
        n1 = h_pos.sum(axis=1)
        fp = h_neg[:, k_neg:].sum(axis=1)
        tp = h_pos[:, k_pos:].sum(axis=1)
        # cum[:, j] = number of drawn negatives among the j smallest distinct negative scores.
        cum = np.zeros((r1 - r0, neg.values.size + 1), dtype=np.int64)
        np.cumsum(h_neg, axis=1, out=cum[:, 1:])
        if cross_ties:  # a tied pair counts one half: (less + less_or_equal) / 2
            below = (cum[:, lt] + cum[:, le]) * 0.5
        else:
            below = cum[:, lt]
        out["auc"][r0:r1] = np.einsum("ij,ij->i", h_pos, below, dtype=float) / (n0 * n1)
        out["tn"][r0:r1] = n0 - fp
        out["fp"][r0:r1] = fp
        out["fn"][r0:r1] = n1 - tp
        out["tp"][r0:r1] = tp
    reps = _metrics_from_counts(out["tn"], out["fp"], out["fn"], out["tp"])
    reps["auc"] = out["auc"]
    reps["n_neg"] = (out["tn"] + out["fp"]).astype(np.int64)
    reps["n_pos"] = (out["fn"] + out["tp"]).astype(np.int64)
    return reps


def bootstrap_ci(
    y_true,
    y_score,
    *,
    threshold: float = 0.5,
    n_boot: int = 2000,
    seed: int = 0,
    level: float = 0.95,
    clusters=None,
) -> dict:
    """Percentile CIs {metric: {estimate, low, high, n_undefined}} plus kind/n_boot/seed/level.

    The estimate is the metric on all frames; only the interval depends on the resampling
    (frames, or whole hands when `clusters` gives each frame's hand id). Replicates where a metric
    is 0/0 (e.g. precision with no predicted positive) are left out of its percentiles and
    counted in n_undefined.
    """
    level = float(level)
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    n_boot = _check_n_boot(n_boot)
    t = _threshold(threshold)
    y, s, strata, kind, n_clusters = _validated(y_true, y_score, clusters)
    reps = _replicates(strata, t, n_boot, seed)
    point = binary_metrics(y, s, threshold=t)
    q = [50.0 * (1.0 - level), 50.0 * (1.0 + level)]
    result: dict = {}
    for name in BOOTSTRAP_METRICS:
        r = reps[name]
        defined = r[~np.isnan(r)]
        low, high = np.percentile(defined, q) if defined.size else (np.nan, np.nan)
        result[name] = {
            "estimate": float(point[name]),
            "low": float(low),
            "high": float(high),
            "n_undefined": int(r.size - defined.size),
        }
    result.update(
        kind=kind,
        n_boot=n_boot,
        seed=seed,
        level=level,
        threshold=t,
        n_frames=int(y.size),
        n_clusters=n_clusters,
        n_units_neg=strata[0].n_units,
        n_units_pos=strata[1].n_units,
    )
    return result


def _mean_inputs(values, clusters, strata):
    """Validated (n, k) values, cluster codes and the stratum of each cluster (sorted ids)."""
    v = np.asarray(values, dtype=float)
    if v.ndim == 1:
        v = v[:, None]
    if v.ndim != 2 or v.shape[0] == 0:
        raise ValueError(f"values must be a non-empty (n_frames,) or (n_frames, k) array, got shape {v.shape}")
    if np.isinf(v).any():
        raise ValueError("values hold infinite numbers; NaN (missing) is the only non-finite value allowed")
    n = v.shape[0]
    if clusters is None:
        codes = np.arange(n)
        n_clusters = n
    else:
        ids, codes = _cluster_codes(clusters, n)
        n_clusters = int(ids.size)
    if strata is None:
        cluster_stratum = np.zeros(n_clusters, dtype=np.int64)
    else:
        s = np.asarray(strata)
        if s.ndim != 1 or s.shape[0] != n:
            raise ValueError(f"strata must be 1-D with one entry per frame ({n}), got shape {s.shape}")
        _, s_codes = np.unique(s, return_inverse=True)
        s_codes = s_codes.reshape(-1)
        cluster_stratum = np.full(n_clusters, -1, dtype=np.int64)
        cluster_stratum[codes] = s_codes
        if (cluster_stratum[codes] != s_codes).any():
            raise ValueError("a cluster (hand) has frames in different strata; each hand needs one label")
    return v, codes, n_clusters, cluster_stratum


def _mean_replicates(v, codes, n_clusters, cluster_stratum, n_boot, seed):
    """(n_boot, k) replicate means; NaN where a replicate drew no defined value of a column."""
    k = v.shape[1]
    defined = ~np.isnan(v)
    sums = np.zeros((n_clusters, k))
    counts = np.zeros((n_clusters, k))
    np.add.at(sums, codes, np.where(defined, v, 0.0))
    np.add.at(counts, codes, defined)
    rng = np.random.default_rng(seed)
    groups = [np.flatnonzero(cluster_stratum == c) for c in range(int(cluster_stratum.max()) + 1)]
    draws = [rng.integers(0, g.size, size=(n_boot, g.size)) for g in groups]
    rep_sums = np.zeros((n_boot, k))
    rep_counts = np.zeros((n_boot, k))
    for g, d in zip(groups, draws):
        block = max(1, _BLOCK_CELLS // g.size)
        for r0 in range(0, n_boot, block):
            r1 = min(n_boot, r0 + block)
            offsets = (np.arange(r1 - r0, dtype=np.int64) * g.size)[:, None]
            mult = np.bincount((d[r0:r1] + offsets).ravel(), minlength=(r1 - r0) * g.size)
            mult = mult.reshape(r1 - r0, g.size).astype(float)
            rep_sums[r0:r1] += mult @ sums[g]
            rep_counts[r0:r1] += mult @ counts[g]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(rep_counts > 0, rep_sums / np.where(rep_counts > 0, rep_counts, 1.0), np.nan)


def bootstrap_mean_replicates(values, *, clusters=None, strata=None, n_boot: int = 2000, seed: int = 0) -> np.ndarray:
    """(n_boot, k) bootstrap replicates of the mean over frames of each column of values (NaN = missing).

    Draw protocol (as bootstrap_replicates): rng = default_rng(seed); for each stratum in sorted order,
    draws = rng.integers(0, n_units, size=(n_boot, n_units)) over that stratum's units: its hands in
    sorted-id order when `clusters` gives each frame's hand (every frame of a drawn hand enters the
    replicate, once per draw), else its frames in input order. A replicate's mean is over the frames it
    holds, so a hand weighs by its number of frames with a value.
    """
    n_boot = _check_n_boot(n_boot)
    v, codes, n_clusters, cluster_stratum = _mean_inputs(values, clusters, strata)
    return _mean_replicates(v, codes, n_clusters, cluster_stratum, n_boot, seed)


def bootstrap_mean_ci(
    values, *, clusters=None, strata=None, n_boot: int = 2000, seed: int = 0, level: float = 0.95
) -> dict:
    """Percentile CIs of per-column frame means: {estimate, low, high, n_undefined} arrays (k,) plus counts.

    values is (n_frames,) or (n_frames, k) with NaN where a frame has no value for a column; the estimate
    is the mean over the frames that have one (hands weighted by their frames), the interval comes from
    bootstrap_mean_replicates (hands resampled within each stratum when clusters/strata are given).
    Replicates that drew no value for a column are left out of its percentiles and counted in n_undefined.
    """
    level = float(level)
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    n_boot = _check_n_boot(n_boot)
    v, codes, n_clusters, cluster_stratum = _mean_inputs(values, clusters, strata)
    reps = _mean_replicates(v, codes, n_clusters, cluster_stratum, n_boot, seed)
    defined = ~np.isnan(v)
    n_values = defined.sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        estimate = np.where(n_values > 0, np.where(defined, v, 0.0).sum(axis=0) / np.maximum(n_values, 1), np.nan)
    q = [50.0 * (1.0 - level), 50.0 * (1.0 + level)]
    k = v.shape[1]
    low, high = np.full(k, np.nan), np.full(k, np.nan)
    n_undefined = np.isnan(reps).sum(axis=0)
    for j in range(k):
        r = reps[:, j]
        r = r[~np.isnan(r)]
        if r.size:
            low[j], high[j] = np.percentile(r, q)
    return {
        "estimate": estimate,
        "low": low,
        "high": high,
        "n_undefined": n_undefined.astype(np.int64),
        "n_values": n_values.astype(np.int64),
        "kind": "frames" if clusters is None else "hands (cluster)",
        "n_clusters": None if clusters is None else n_clusters,
        "n_strata": int(cluster_stratum.max()) + 1,
        "n_boot": n_boot,
        "seed": seed,
        "level": level,
    }
