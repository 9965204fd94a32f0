"""Statistics of the CTS study as pure numpy/scipy functions (no Django, no scikit-learn)."""

from .agreement import Box, bland_altman, box_iou, box_iou_many, icc_2_1, mean_pairwise_iou
from .bootstrap import (
    BOOTSTRAP_METRICS,
    bootstrap_ci,
    bootstrap_mean_ci,
    bootstrap_mean_replicates,
    bootstrap_replicates,
)
from .calibration import brier_score, reliability_bins, wilson_interval
from .evaluation import compare_models, csa_baseline, csa_between_groups, evaluate_predictions
from .delong import delong_auc_covariance, delong_ci, delong_test
from .group_tests import mann_whitney
from .shift import performance_shift
from .metrics import aggregate_by_cluster, binary_metrics, confusion, roc_auc, roc_curve
from .threshold import youden_threshold

__all__ = [
    "BOOTSTRAP_METRICS",
    "Box",
    "aggregate_by_cluster",
    "binary_metrics",
    "bland_altman",
    "bootstrap_ci",
    "bootstrap_mean_ci",
    "bootstrap_mean_replicates",
    "brier_score",
    "bootstrap_replicates",
    "compare_models",
    "csa_baseline",
    "csa_between_groups",
    "evaluate_predictions",
    "box_iou",
    "box_iou_many",
    "confusion",
    "delong_auc_covariance",
    "delong_ci",
    "delong_test",
    "icc_2_1",
    "mann_whitney",
    "mean_pairwise_iou",
    "performance_shift",
    "reliability_bins",
    "roc_auc",
    "roc_curve",
    "wilson_interval",
    "youden_threshold",
]
