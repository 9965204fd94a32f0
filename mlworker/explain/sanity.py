"""Model-parameter randomisation test (Adebayo et al. 2018, "Sanity checks for saliency maps").

A map that reflects what the model learned must change when the learned weights are replaced by random
ones; a map that barely changes (high rank correlation between the two) shows the input, not the model.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable

import numpy as np
import torch
from scipy import stats
from torch import nn

__all__ = ["SANITY_THRESHOLD", "randomised_copy", "sanity_check"]

# Adebayo et al. read maps whose rank correlation with the randomised model's stays high as insensitive
# to the weights; the median |Spearman rho| must fall below this for the method to pass. 0.5 is the
# midpoint: above it the randomised model's map still orders most of the crop like the trained one's.
SANITY_THRESHOLD = 0.5


def _cuda_devices(model: nn.Module) -> list[int]:
    return sorted({p.device.index or 0 for p in model.parameters() if p.device.type == "cuda"})


@torch.no_grad()
def randomised_copy(model: nn.Module, *, seed: int) -> nn.Module:
    """A deep copy of model with every weight re-initialised (seeded); the original is left untouched.

    Each module with its own `reset_parameters` (convolutions, linear layers, batch norms, which also
    reset their running statistics) re-draws its parameters the way the library initialises them.
    Parameters of a module without one are shuffled, which keeps their distribution but not what was
    learned. The global RNG state is restored afterwards.
    """
    clone = copy.deepcopy(model)
    with torch.random.fork_rng(devices=_cuda_devices(clone)):
        torch.manual_seed(seed)
        for module in clone.modules():
            own = list(module.parameters(recurse=False))
            if not own:
                continue
            reset = getattr(module, "reset_parameters", None)
            if callable(reset):
                reset()
                continue
            for param in own:
                order = torch.randperm(param.numel(), device=param.device)
                param.copy_(param.flatten()[order].view_as(param))
    return clone


def _spearman(trained: np.ndarray, randomised: np.ndarray) -> float:
    """Rank correlation of a trained model's map with its randomised copy's; a constant map has no ranking.

    A flat map of the trained model shows nothing of what it learned (Grad-CAM of an untrained SqueezeNet is
    all zero), so it counts as unchanged (rho 1) whatever the copy gives; a flat map of the copy only, as 0.
    """
    if np.all(trained == trained.flat[0]):
        return 1.0
    if np.all(randomised == randomised.flat[0]):
        return 0.0
    return float(stats.spearmanr(trained, randomised).statistic)


def sanity_check(
    explain_fn: Callable[[nn.Module, torch.Tensor], np.ndarray],
    model: nn.Module,
    images: torch.Tensor,
    *,
    seed: int = 0,
    threshold: float = SANITY_THRESHOLD,
) -> dict:
    """Maps of the trained model against maps of its randomised copy, per frame Spearman rho, and a verdict.

    explain_fn(model, images) returns (N, S, S) maps. Returns {"spearman": signed rho per frame, "median":
    median |rho|, "passed": median |rho| < threshold, "threshold", "n_frames", "seed", "reason"}. |rho| is
    used because a map whose ranking flips under randomisation still follows the input, not the weights.
    Constant maps have no ranking: a flat map of the trained model counts as unchanged (rho 1), a flat map
    of the randomised copy alone as 0.
    """
    threshold = float(threshold)
    if not (math.isfinite(threshold) and 0.0 < threshold <= 1.0):
        raise ValueError(f"threshold must be in (0, 1], got {threshold!r}")
    if len(images) == 0:
        raise ValueError("the sanity check needs at least one frame")
    trained = np.asarray(explain_fn(model, images), dtype=np.float64)
    randomised = np.asarray(explain_fn(randomised_copy(model, seed=seed), images), dtype=np.float64)
    if trained.shape != randomised.shape or trained.shape[0] != len(images):
        raise ValueError(
            f"explain_fn returned maps of shape {trained.shape} and {randomised.shape} for {len(images)} frames; "
            "it must return one map per frame"
        )
    if not (np.isfinite(trained).all() and np.isfinite(randomised).all()):
        raise ValueError("explain_fn returned NaN or infinite attributions; the check cannot rank them")
    rhos = [_spearman(t.ravel(), r.ravel()) for t, r in zip(trained, randomised)]
    median = float(np.median(np.abs(rhos)))
    passed = median < threshold
    if passed:
        reason = (
            f"maps change when the weights are randomised (median |Spearman rho| {median:.2f} < {threshold:.2f}): "
            "they reflect the trained model"
        )
    else:
        reason = (
            f"maps barely change when the weights are randomised (median |Spearman rho| {median:.2f} >= "
            f"{threshold:.2f}): they do not reflect what the model learned"
        )
    return {
        "spearman": rhos,
        "median": median,
        "passed": passed,
        "threshold": threshold,
        "n_frames": len(rhos),
        "seed": seed,
        "reason": reason,
    }
