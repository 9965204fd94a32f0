"""Attribution shares summarised per group (model × method × outcome × stage) with CIs over hands."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from mlworker.stats.bootstrap import bootstrap_mean_ci

from .regions import REGIONS

__all__ = ["CI_LEVEL", "SUMMARY_STATS", "summarise_shares"]

CI_LEVEL = 0.95
# Per-frame quantities averaged per group; "*_excess" is share minus area share (0 = no better than chance),
# "pointing_hit" is 1 when the maximum lies in nerve or ring, "pointing_chance" is the hit rate of a pixel
# picked at random (nerve + ring area share).
SUMMARY_STATS = (
    *REGIONS,
    *(f"{region}_area" for region in REGIONS),
    "nerve_excess",
    "ring_excess",
    "pointing_hit",
    "pointing_chance",
)


def _frame_values(shares: dict | None) -> list[float]:
    """One row of SUMMARY_STATS for a frame; NaN throughout when it has no outline or no positive mass."""
    if shares is None or shares.get("nerve") is None:
        return [math.nan] * len(SUMMARY_STATS)
    values = {key: float(shares[key]) for key in (*REGIONS, *(f"{r}_area" for r in REGIONS))}
    values["nerve_excess"] = values["nerve"] - values["nerve_area"]
    values["ring_excess"] = values["ring"] - values["ring_area"]
    values["pointing_hit"] = 1.0 if shares["pointing"] in ("nerve", "ring") else 0.0
    values["pointing_chance"] = values["nerve_area"] + values["ring_area"]
    return [values[key] for key in SUMMARY_STATS]


def _check_row(i: int, row: dict, by: tuple[str, ...]) -> None:
    missing = [key for key in ("hand", "label", "shares", *by) if key not in row]
    if missing:
        raise ValueError(f"row {i} lacks {', '.join(missing)}; each row needs hand, label, shares and the `by` keys")
    if row["label"] not in (0, 1) or isinstance(row["label"], bool):
        raise ValueError(f"row {i} has label {row['label']!r}; use 0 (control) or 1 (CTS)")
    if row["hand"] is None:
        raise ValueError(f"row {i} has no hand id; the CIs resample hands")
    shares = row["shares"]
    if shares is not None and not (isinstance(shares, dict) and all(k in shares for k in (*REGIONS, "pointing"))):
        raise ValueError(f"row {i}: shares must be None (no outline) or a dict from attribution_shares")


def _group_order(key: tuple) -> tuple:
    # Groups sort by value with None last; the type name keeps mixed-type keys comparable.
    return tuple((v is None, type(v).__name__, v if v is not None else 0) for v in key)


def _number(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


def summarise_shares(
    rows: Sequence[dict], *, by: tuple[str, ...], n_boot: int = 2000, seed: int = 0
) -> list[dict]:
    """One summary per group of rows (the `by` keys), sorted by key, each stat with a 95% CI over hands.

    rows: one per explained frame, {"hand", "label": 0|1, "shares": attribution_shares(...) or None when the
    frame has no nerve outline, **grouping keys}. Each group reports n_frames, n_hands, n_without_outline
    (shares None), n_without_positive_mass (an outline but a map with nothing positive) and n_measured;
    then for each of SUMMARY_STATS {"estimate", "low", "high"} (None where no frame is measured).

    Estimates are means over the measured frames, so a hand weighs by its number of measured frames; the
    area shares are averaged over the same frames as the attribution shares, so the two compare directly.
    The interval is a percentile bootstrap that resamples whole hands within each label (stratified cluster
    bootstrap, mlworker.stats.bootstrap_mean_ci): frames of one hand are not independent evidence.
    """
    by = tuple(by)
    grouped: dict[tuple, list[dict]] = {}
    for i, row in enumerate(rows):
        _check_row(i, row, by)
        grouped.setdefault(tuple(row[key] for key in by), []).append(row)

    summaries = []
    for key in sorted(grouped, key=_group_order):
        group = grouped[key]
        hand_labels: dict = {}
        for row in group:
            if hand_labels.setdefault(row["hand"], row["label"]) != row["label"]:
                raise ValueError(f"hand {row['hand']} has frames labelled both 0 and 1; a hand has one label")
        values = np.array([_frame_values(row["shares"]) for row in group], dtype=float)
        hands = np.array([row["hand"] for row in group])
        labels = np.array([row["label"] for row in group], dtype=np.int64)
        ci = bootstrap_mean_ci(values, clusters=hands, strata=labels, n_boot=n_boot, seed=seed, level=CI_LEVEL)
        n_without_outline = sum(row["shares"] is None for row in group)
        n_measured = int(ci["n_values"][0])
        summary = dict(zip(by, key))
        summary.update(
            n_frames=len(group),
            n_hands=len(hand_labels),
            n_hands_control=sum(label == 0 for label in hand_labels.values()),
            n_hands_cts=sum(label == 1 for label in hand_labels.values()),
            n_without_outline=n_without_outline,
            n_without_positive_mass=len(group) - n_without_outline - n_measured,
            n_measured=n_measured,
        )
        for j, stat in enumerate(SUMMARY_STATS):
            summary[stat] = {
                "estimate": _number(ci["estimate"][j]),
                "low": _number(ci["low"][j]),
                "high": _number(ci["high"][j]),
            }
        summary["ci"] = {
            "kind": "bootstrap over hands, stratified by label",
            "level": CI_LEVEL,
            "n_boot": ci["n_boot"],
            "seed": seed,
        }
        summaries.append(summary)
    return summaries
