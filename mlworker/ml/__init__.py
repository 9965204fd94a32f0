"""CTS deep-learning core: model factory, crop loading, batched augmentation and a resumable training loop.

Pure PyTorch/timm/OpenCV; nothing here imports Django, so the Celery worker and scripts can use it directly.
Names resolve on first use (PEP 562): importing the package or its light modules (`constants`, `config`)
pulls in no torch, so the web process can validate a launch without loading the ML stack.
"""

from __future__ import annotations

from mlworker.lazy import lazy_exports

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
    **dict.fromkeys(("FitResult", "Speedups", "Stopped", "epoch_progress", "evaluate", "fit", "autocast",
                     "kernel_settings", "library_versions", "load_trained", "make_optimizer", "predict_proba",
                     "prepare_model", "roc_auc", "runtime_settings", "select_device", "train_one_epoch"), "train"),
}

__all__ = list(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)
