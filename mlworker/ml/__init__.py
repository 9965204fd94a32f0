"""CTS deep-learning core: model factory, crop loading, batched augmentation and a resumable training loop.

Pure PyTorch/timm/OpenCV; nothing here imports Django, so the Celery worker and scripts can use it directly.
Names resolve on first use (PEP 562): importing the package or its light modules (`constants`, `config`)
pulls in no torch, so the web process can validate a launch without loading the ML stack.
"""

from __future__ import annotations

import importlib
from typing import Any

# Public name -> the module of this package that defines it.
_EXPORTS: dict[str, str] = {
    "BatchAugment": "augment",
    "ModelCache": "cache",
    **dict.fromkeys(("CLASS_NAMES", "IMAGENET_MEAN", "IMAGENET_STD", "INPUT_SIZE", "LABEL_CONTROL", "LABEL_CTS",
                     "MODEL_LABELS", "MODEL_NAMES"), "constants"),
    **dict.fromkeys(("OPTIMIZERS", "TrainConfig"), "config"),
    **dict.fromkeys(("CropSample", "CropTensors", "GreyNormalizer", "ImageChanged", "batches", "crop_image",
                     "load_crops"), "data"),
    **dict.fromkeys(("WeightsUnavailable", "build_model", "model_normalization", "normalization",
                     "weights_cache_path"), "models"),
    **dict.fromkeys(("FitResult", "Stopped", "epoch_progress", "evaluate", "fit", "autocast", "library_versions",
                     "load_trained", "predict_proba", "prepare_model", "roc_auc", "runtime_settings",
                     "select_device", "train_one_epoch"), "train"),
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
