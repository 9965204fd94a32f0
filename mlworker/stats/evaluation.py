"""The study's evaluation of one model, the comparison of models, and the manual-CSA baseline.

Frames of one hand are not independent and the hand is what a clinic diagnoses, so every result is
given at frame level and at hand level (a hand's probability is the mean of its frames'), with two
labelled bootstrap intervals at frame level: resampling frames (as the reference study did) and
resampling hands (cluster bootstrap). Frame-level AUC intervals and model comparisons use Obuchowski's
clustered variance with hands as clusters, never DeLong's, which assumes independent frames.
"""

from __future__ import annotations

from collections.abc import Mapping
from itertools import combinations

import numpy as np

from mlworker.finite import json_safe

from .bootstrap import bootstrap_ci
from .delong import delong_ci, delong_test
from .group_tests import mann_whitney
from .metrics import aggregate_by_cluster, binary_metrics, roc_curve
from .threshold import youden_threshold

N_BOOT = 2000


def _level(y_true, y_score, *, threshold: float, n_boot: int, seed: int, clusters=None) -> dict:
    metrics = binary_metrics(y_true, y_score, threshold=threshold)
    auc_low, auc_high = delong_ci(y_true, y_score, clusters=clusters)
    result = {
        "n": int(len(y_true)), "n_positive": int(np.sum(y_true)),
        "metrics": metrics,
        "confusion_matrix": [[metrics["tn"], metrics["fp"]], [metrics["fn"], metrics["tp"]]],
        "roc": roc_curve(y_true, y_score),
        "auc_delong_ci": [auc_low, auc_high],
        "auc_ci_method": "Obuchowski clustered by hand" if clusters is not None else "DeLong",
        "ci": {"resampling_frames" if clusters is not None else "resampling_hands":
               bootstrap_ci(y_true, y_score, threshold=threshold, n_boot=n_boot, seed=seed)},
    }
    if clusters is not None:
        result["ci"]["resampling_hands_cluster"] = bootstrap_ci(y_true, y_score, threshold=threshold, n_boot=n_boot,
                                                                seed=seed, clusters=clusters)
    return result


def evaluate_predictions(y_true, y_score, hand_ids, *, threshold: float = 0.5, n_boot: int = N_BOOT,
                         seed: int = 0) -> dict:
    """Frame- and hand-level metrics, ROC, confusion matrices and bootstrap 95% CIs of one model."""
    y_true, y_score, hand_ids = np.asarray(y_true), np.asarray(y_score, float), np.asarray(hand_ids)
    hands, hand_true, hand_score = aggregate_by_cluster(y_true, y_score, hand_ids)
    return json_safe({
        "threshold": threshold,
        "frame": _level(y_true, y_score, threshold=threshold, n_boot=n_boot, seed=seed, clusters=hand_ids),
        "hand": {**_level(hand_true, hand_score, threshold=threshold, n_boot=n_boot, seed=seed),
                 "hand_ids": hands.tolist(), "labels": hand_true.tolist(), "probabilities": hand_score.tolist()},
    })


def compare_models(y_true, scores: Mapping[str, np.ndarray], hand_ids) -> dict:
    """Paired AUC tests for every pair of models: on the test frames clustered by hand (Obuchowski), and on hands."""
    y_true, hand_ids = np.asarray(y_true), np.asarray(hand_ids)
    per_hand = {}
    for name, score in scores.items():
        _, hand_true, hand_score = aggregate_by_cluster(y_true, np.asarray(score, float), hand_ids)
        per_hand[name] = hand_score
    pairs = []
    for a, b in combinations(sorted(scores), 2):
        pairs.append({"model_a": a, "model_b": b,
                      "frame": delong_test(y_true, np.asarray(scores[a], float), np.asarray(scores[b], float),
                                           clusters=hand_ids),
                      "hand": delong_test(hand_true, per_hand[a], per_hand[b])})
    return json_safe({"pairs": pairs})


def csa_baseline(train_csa, train_labels, test_csa, test_labels, *, test_hand_ids, model_hand_scores=None,
                 n_boot: int = N_BOOT, seed: int = 0) -> dict:
    """Manual-CSA threshold chosen by Youden's J on training hands, evaluated on the test hands.

    `model_hand_scores` maps a model name to its hand probabilities in the order of `test_hand_ids`;
    each gets a DeLong test against CSA on the same hands.
    """
    train_csa, test_csa = np.asarray(train_csa, float), np.asarray(test_csa, float)
    test_labels = np.asarray(test_labels)
    cut = youden_threshold(np.asarray(train_labels), train_csa)
    result = _level(test_labels, test_csa, threshold=cut["threshold"], n_boot=n_boot, seed=seed)
    result["youden_on_training"] = cut
    result["hand_ids"] = list(test_hand_ids)
    result["delong_vs_models"] = [
        {"model": name, **delong_test(test_labels, np.asarray(scores, float), test_csa)}
        for name, scores in sorted((model_hand_scores or {}).items())]
    return json_safe(result)


def csa_between_groups(control_csa, cts_csa) -> dict:
    """Mann–Whitney U of manual CSA between control (x) and CTS (y) hands over the cohort.

    The Hodges–Lehmann shift is also given as CTS minus control, the way a paper reports it.
    """
    result = mann_whitney(np.asarray(control_csa, float), np.asarray(cts_csa, float))
    low, high = result["hodges_lehmann_ci"]
    result["shift_cts_minus_control"] = -result["hodges_lehmann_shift"]
    result["shift_cts_minus_control_ci"] = [-high, -low]
    return json_safe(result)
