"""CPU benchmark of the study statistics: 3 models x (frame + cluster bootstrap) + DeLong, goal < 1 s.

Run: .venv/bin/python bench/bench_stats.py
"""

from __future__ import annotations

import pathlib
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # run from a checkout

from mlworker.stats import bootstrap_ci, delong_auc_covariance, delong_test  # noqa: E402

N_HANDS, FRAMES_PER_HAND, N_BOOT, N_MODELS, GOAL_S = 100, 20, 2000, 3, 1.0


def make_data(seed: int = 0):
    """100 hands (50 CTS) x 20 frames; 3 models whose frame scores share a per-hand effect."""
    rng = np.random.default_rng(seed)
    hands = np.repeat(np.arange(N_HANDS), FRAMES_PER_HAND)
    y = (hands < N_HANDS // 2).astype(np.int64)
    hand_effect = rng.normal(0.0, 1.0, N_HANDS)[hands]
    scores = np.vstack(
        [
            1.0 / (1.0 + np.exp(-(sep * (y - 0.5) + hand_effect + rng.normal(0.0, 0.6, y.size))))
            for sep in (1.0, 1.5, 2.0)
        ]
    )
    return y, scores, hands


def run_once(y, scores, hands) -> None:
    """The full statistics workload of one evaluation."""
    for s in scores:
        bootstrap_ci(y, s, n_boot=N_BOOT, seed=0)
        bootstrap_ci(y, s, n_boot=N_BOOT, seed=0, clusters=hands)
    delong_auc_covariance(y, scores)
    for a in range(N_MODELS):
        for b in range(a + 1, N_MODELS):
            delong_test(y, scores[a], scores[b])


def main() -> None:
    y, scores, hands = make_data()
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        run_once(y, scores, hands)
        times.append(time.perf_counter() - t0)
    first, median = times[0], statistics.median(times)
    print(
        f"workload: {N_MODELS} models x {N_BOOT} replicates x {y.size} frames "
        f"({N_HANDS} hands x {FRAMES_PER_HAND}), frames + hands (cluster) bootstrap, DeLong"
    )
    print(f"first run (cold): {first:.3f} s   goal_ratio = {GOAL_S / first:.2f}")
    print(f"median of {len(times)}: {median:.3f} s   goal_ratio = {GOAL_S / median:.2f}")


if __name__ == "__main__":
    main()
