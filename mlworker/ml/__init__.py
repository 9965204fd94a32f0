"""CTS deep-learning core: model factory, crop loading, batched augmentation and a resumable training loop.

Pure PyTorch/timm/OpenCV; nothing here imports Django, so the Celery worker and scripts can use it directly.
"""

from .augment import BatchAugment
from .constants import (
    CLASS_NAMES,
    IMAGENET_MEAN,
    IMAGENET_STD,
    INPUT_SIZE,
    LABEL_CONTROL,
    LABEL_CTS,
    MODEL_LABELS,
    MODEL_NAMES,
)
from .data import CropSample, CropTensors, GreyNormalizer, ImageChanged, batches, crop_image, load_crops
from .models import WeightsUnavailable, build_model, model_normalization, normalization, weights_cache_path
from .train import (
    OPTIMIZERS,
    FitResult,
    Stopped,
    TrainConfig,
    epoch_progress,
    evaluate,
    fit,
    autocast,
    library_versions,
    load_trained,
    predict_proba,
    prepare_model,
    roc_auc,
    runtime_settings,
    select_device,
    train_one_epoch,
)

__all__ = [
    "BatchAugment",
    "CLASS_NAMES",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "INPUT_SIZE",
    "LABEL_CONTROL",
    "LABEL_CTS",
    "MODEL_LABELS",
    "MODEL_NAMES",
    "CropSample",
    "CropTensors",
    "GreyNormalizer",
    "ImageChanged",
    "batches",
    "crop_image",
    "load_crops",
    "WeightsUnavailable",
    "build_model",
    "model_normalization",
    "normalization",
    "weights_cache_path",
    "OPTIMIZERS",
    "FitResult",
    "Stopped",
    "TrainConfig",
    "epoch_progress",
    "evaluate",
    "fit",
    "autocast",
    "library_versions",
    "load_trained",
    "predict_proba",
    "prepare_model",
    "roc_auc",
    "runtime_settings",
    "select_device",
    "train_one_epoch",
]
