"""Explanations of the CTS classifiers: attribution maps, their overlays, and how much of them falls on the nerve.

Pure PyTorch/numpy/lime/scikit-image; nothing here imports Django, so Celery workers and scripts use it directly.
Names resolve on first use (PEP 562), so importing the package, or one light module of it, pulls in neither
torch nor lime until a name that needs them is asked for.
"""

from __future__ import annotations

from mlworker.lazy import lazy_exports

# Public name -> the module of this package that defines it.
_EXPORTS: dict[str, str] = {
    **dict.fromkeys(
        ("METHODS", "GRADCAM_LAYERS", "OcclusionParams", "LimeParams", "GradCamParams", "default_params",
         "params_from_dict", "resolved_params", "explain_crops", "gradcam_layer"),
        "methods",
    ),
    **dict.fromkeys(("overlay_png", "heatmap_png"), "overlay"),
    **dict.fromkeys(("outline_to_crop", "nerve_mask", "ring_mask", "attribution_shares"), "regions"),
    "summarise_shares": "summary",
    **dict.fromkeys(("randomised_copy", "sanity_check"), "sanity"),
}

__all__ = list(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)
