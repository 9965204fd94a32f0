"""What the experiment dashboard draws of one evaluated run, computed once when the run is evaluated.

No Django here. From the test frames' labels, probabilities and hands, and each test hand's EPS stage as
the cohort records it at evaluation time: every hand's mean probability with its frames' spread, the
calibration bins and Brier score at frame and at hand level, and sensitivity per EPS stage (specificity
for controls) at hand level with Wilson 95% intervals. Stored on the run's evaluation, so a dashboard
request never decodes the per-frame arrays nor reads stages that may have changed since.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from mlworker.stats import brier_score, reliability_bins, wilson_interval

CALIBRATION_BINS = 10
CTS_STAGES = (2, 3, 4, 5)


def _wilson(successes: int, n: int) -> list[float] | None:
    interval = wilson_interval(successes, n)
    return None if interval is None else list(interval)


def calibration(labels: Sequence[int], probabilities: Sequence[float], *, bins: int = CALIBRATION_BINS) -> dict:
    """Reliability bins of equal width on [0, 1] (the last one closed) and the Brier score (mlworker.stats).

    Each non-empty bin: its bounds, count, mean predicted probability, observed fraction of CTS and that
    fraction's Wilson interval.
    """
    rows = [{**row, "observed_ci": _wilson(round(row["observed"] * row["n"]), row["n"])}
            for row in reliability_bins(labels, probabilities, n_bins=bins)]
    return {"bins": rows, "brier": brier_score(labels, probabilities), "n": len(labels)}


def per_hand(labels: Sequence[int], probabilities: Sequence[float], hand_ids: Sequence[int],
             stages: Mapping[int, int | None]) -> list[dict]:
    """Each test hand (sorted by id): truth, stage, mean of its frames' probabilities and their spread."""
    y = np.asarray(labels)
    p = np.asarray(probabilities, float)
    h = np.asarray(hand_ids)
    out = []
    for hand in sorted(set(h.tolist())):
        frames = p[h == hand]
        q1, median, q3 = np.percentile(frames, [25, 50, 75])
        out.append({"hand": int(hand), "label": int(y[h == hand][0]), "stage": stages.get(int(hand)),
                    "n_frames": int(frames.size), "mean": float(frames.mean()), "median": float(median),
                    "sd": float(frames.std(ddof=1)) if frames.size > 1 else 0.0,
                    "min": float(frames.min()), "max": float(frames.max()), "q1": float(q1), "q3": float(q3)})
    return out


def by_stage(hands: Sequence[dict], *, threshold: float) -> list[dict]:
    """Hand-level sensitivity per CTS stage 2–5 and specificity of the controls, with Wilson 95% CIs.

    A hand is called CTS when its mean probability is at least `threshold` (the evaluation's rule). CTS
    hands without a stage (unstaged at evaluation) are counted in their own row, not dropped silently.
    """
    rows = []
    controls = [x for x in hands if x["label"] == 0]
    correct = sum(x["mean"] < threshold for x in controls)
    rows.append({"stage": "control", "measure": "specificity", "n": len(controls), "correct": correct,
                 "value": correct / len(controls) if controls else None,
                 "ci": _wilson(correct, len(controls))})
    cts = [x for x in hands if x["label"] == 1]
    for stage in (*CTS_STAGES, None):
        members = [x for x in cts if x["stage"] == stage] if stage is not None else \
            [x for x in cts if x["stage"] not in CTS_STAGES]
        if stage is None and not members:
            continue
        detected = sum(x["mean"] >= threshold for x in members)
        rows.append({"stage": str(stage) if stage is not None else "unstaged", "measure": "sensitivity",
                     "n": len(members), "correct": detected,
                     "value": detected / len(members) if members else None,
                     "ci": _wilson(detected, len(members))})
    return rows


def evaluation_summary(labels: Sequence[int], probabilities: Sequence[float], hand_ids: Sequence[int], *,
                       stages: Mapping[int, int | None], threshold: float) -> dict:
    """The dashboard's part of a run's evaluation (stored under evaluation["dashboard"])."""
    hands = per_hand(labels, probabilities, hand_ids, stages)
    return {
        "hands": hands,
        "calibration": {"frame": calibration(labels, probabilities),
                        "hand": calibration([x["label"] for x in hands], [x["mean"] for x in hands])},
        "by_stage": by_stage(hands, threshold=threshold),
        "threshold": threshold,
        "stages_recorded": "at evaluation",
    }
