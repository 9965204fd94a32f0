"""The study's real evaluation path, timed: what a run and its experiment compute once training ends.

Three models' `evaluate_predictions` (frame and hand metrics, frame, hand and hand-cluster bootstrap CIs), the
paired `compare_models` DeLong tests, the manual-CSA `csa_baseline` against each model and `csa_between_groups`,
at study scale: 20 test hands (10 per group) x 100 frames, 80 training hands for the CSA threshold.
Goal: the whole path in under 1 s on the CPU, so a run never waits on its statistics.

    .venv/bin/python bench/bench_stats.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import pathlib
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # run from a checkout

from mlworker.stats import compare_models, csa_baseline, csa_between_groups, evaluate_predictions  # noqa: E402

TEST_HANDS, FRAMES, TRAIN_HANDS, MODELS, GOAL_S = 20, 100, 80, ("squeezenet1_1", "mobilenetv2_100",
                                                                  "efficientnet_b0"), 1.0


def make_data(seed: int = 0) -> dict:
    """Test frames of 20 hands whose three models' scores share a per-hand effect; CSA of train and test hands."""
    rng = np.random.default_rng(seed)
    hands = np.repeat(np.arange(TEST_HANDS), FRAMES)
    y = (hands < TEST_HANDS // 2).astype(np.int64)
    effect = rng.normal(0.0, 1.0, TEST_HANDS)[hands]
    scores = {name: 1.0 / (1.0 + np.exp(-(sep * (y - 0.5) + effect + rng.normal(0.0, 0.6, y.size))))
              for name, sep in zip(MODELS, (1.0, 1.5, 2.0))}
    train_labels = np.arange(TRAIN_HANDS) % 2
    hand_labels = (np.arange(TEST_HANDS) < TEST_HANDS // 2).astype(int)
    return {"y": y, "hands": hands, "scores": scores, "train_labels": train_labels,
            "train_csa": 9 + 4 * train_labels + rng.normal(0, 1.5, TRAIN_HANDS), "hand_labels": hand_labels,
            "test_csa": 9 + 4 * hand_labels + rng.normal(0, 1.5, TEST_HANDS)}


def run_once(d: dict) -> dict[str, float]:
    """Seconds of each part of one experiment's evaluation."""
    parts: dict[str, float] = {}
    t = time.perf_counter()
    evaluations = {name: evaluate_predictions(d["y"], s, d["hands"], seed=0) for name, s in d["scores"].items()}
    parts["evaluate_predictions x3"] = time.perf_counter() - t
    t = time.perf_counter()
    compare_models(d["y"], d["scores"], d["hands"])
    parts["compare_models (DeLong pairs)"] = time.perf_counter() - t
    t = time.perf_counter()
    hand_scores = {name: e["hand"]["probabilities"] for name, e in evaluations.items()}
    csa_baseline(d["train_csa"], d["train_labels"], d["test_csa"], d["hand_labels"],
                 test_hand_ids=list(range(TEST_HANDS)), model_hand_scores=hand_scores)
    parts["csa_baseline (+ DeLong vs models)"] = time.perf_counter() - t
    t = time.perf_counter()
    csa_between_groups(d["test_csa"][d["hand_labels"] == 0], d["test_csa"][d["hand_labels"] == 1])
    parts["csa_between_groups"] = time.perf_counter() - t
    return parts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    data = make_data()
    runs = [run_once(data) for _ in range(args.repeats)]
    print(f"workload: {len(MODELS)} models x {TEST_HANDS} test hands x {FRAMES} frames, {TRAIN_HANDS} CSA training "
          f"hands; {args.repeats} repeats")
    for part in runs[0]:
        values = [r[part] for r in runs]
        print(f"  {part:34s} first {values[0]:.3f} s   median {statistics.median(values):.3f} s")
    totals = [sum(r.values()) for r in runs]
    first, median = totals[0], statistics.median(totals)
    print(f"whole path: first (cold) {first:.3f} s, median {median:.3f} s; goal < {GOAL_S} s: "
          f"ratio goal/first = {GOAL_S / first:.2f}, goal/median = {GOAL_S / median:.2f}")


if __name__ == "__main__":
    main()
