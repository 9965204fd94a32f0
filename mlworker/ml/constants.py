"""Fixed names and numbers of the CTS protocol (Shinohara et al., Ultrasound Med Biol 2022)."""

from __future__ import annotations

# The three architectures compared in the study; the strings are the library model names.
MODEL_NAMES: tuple[str, ...] = ("squeezenet1_1", "mobilenetv2_100", "efficientnet_b0")

MODEL_LABELS: dict[str, str] = {
    "squeezenet1_1": "SqueezeNet 1.1",
    "mobilenetv2_100": "MobileNetV2",
    "efficientnet_b0": "EfficientNet-B0",
}

# Which library builds each model: SqueezeNet 1.1 is torchvision's, the others timm's.
TORCHVISION_MODELS: frozenset[str] = frozenset({"squeezenet1_1"})
TIMM_MODELS: frozenset[str] = frozenset({"mobilenetv2_100", "efficientnet_b0"})

# Side of the square median-nerve crop fed to the networks.
INPUT_SIZE = 224

# ImageNet statistics; the pretrained weights of all three models expect them.
IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)

# Class indices of the binary task.
CLASS_NAMES: tuple[str, str] = ("control", "CTS")
LABEL_CONTROL = 0
LABEL_CTS = 1

# Probability of a horizontal flip (a left hand mirrors a right one).
FLIP_P = 0.5
# Rotation and shear half-ranges in degrees: each is drawn uniformly in [-x, x].
DEGREES = 10.0
SHEAR = 10.0
# Isotropic zoom factor, drawn uniformly in [low, high].
SCALE: tuple[float, float] = (0.8, 1.2)
# Shift half-ranges as fractions of the width and the height.
TRANSLATE: tuple[float, float] = (0.1, 0.1)
