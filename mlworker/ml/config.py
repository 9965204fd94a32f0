"""Hyper-parameters of a training run: plain data the web process validates and the worker trains with.

No torch here, so the web process can check a launch without loading the ML stack.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from .constants import INPUT_SIZE, MODEL_NAMES
from .normalise import SITE_NORMALISATIONS

OPTIMIZERS = ("adam", "sgd", "adamw")
# Learning rates a run may use: below, nothing moves in 30 epochs; above, Adam and SGD diverge to NaN on these
# networks. The launch form and API take their bounds from here.
LR_MIN = 1e-6
LR_MAX = 0.1
# torch.compile backends a run may ask for: "inductor" generates GPU kernels (minutes of compiling on a CPU);
# "aot_eager" and "eager" trace without generating code, which checks the compiled path cheaply.
COMPILE_BACKENDS = ("inductor", "aot_eager", "eager")


@dataclass
class TrainConfig:
    """Hyper-parameters of one training run; stored in every checkpoint."""

    model_name: str
    epochs: int = 30
    batch_size: int = 32
    lr: float = 1e-4
    optimizer: str = "adam"
    weight_decay: float = 0.0
    momentum: float = 0.9
    early_stopping_patience: int | None = 5
    seed: int = 0
    input_size: int = INPUT_SIZE
    pretrained: bool = True
    weights_file: str | None = None
    augment: bool = True
    device: str = "auto"
    # Write last.pt every k epochs (and at the end); a crash loses at most k - 1 epochs. best.pt stays exact.
    checkpoint_every: int = 1
    # Per-site intensity normalisation of the crops (mlworker.ml.normalise); needs a manifest recording sites.
    site_normalisation: str = "none"
    # Speed-ups used on CUDA only (the CPU stays exact fp32): bf16 autocast, channels_last convolutions and fused
    # optimizer kernels. A run records on its runtime which it used.
    bf16: bool = True
    channels_last: bool = True
    fused_optimizer: bool = True
    # torch.compile backend of the training step (any device), or None to run eagerly.
    compile: str | None = None

    def __post_init__(self) -> None:
        if self.model_name not in MODEL_NAMES:
            raise ValueError(f"model_name {self.model_name!r} is unknown; choose one of {', '.join(MODEL_NAMES)}.")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer {self.optimizer!r} is unknown; choose one of {', '.join(OPTIMIZERS)}.")
        if self.epochs < 1 or self.batch_size < 1 or self.input_size < 1:
            raise ValueError("epochs, batch_size and input_size must be >= 1.")
        if not LR_MIN <= self.lr <= LR_MAX:
            raise ValueError(f"lr must be between {LR_MIN:g} and {LR_MAX:g} (outside it training stalls or "
                             f"diverges), got {self.lr:g}.")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay}.")
        if self.checkpoint_every < 1:
            raise ValueError(f"checkpoint_every must be >= 1 epoch, got {self.checkpoint_every}.")
        if self.early_stopping_patience is not None and self.early_stopping_patience < 1:
            raise ValueError("early_stopping_patience must be >= 1, or None to train all epochs.")
        if self.site_normalisation not in SITE_NORMALISATIONS:
            raise ValueError(f"site_normalisation {self.site_normalisation!r} is unknown; choose one of "
                             f"{', '.join(SITE_NORMALISATIONS)}.")
        if self.compile is not None and self.compile not in COMPILE_BACKENDS:
            raise ValueError(f"compile {self.compile!r} is unknown; choose one of {', '.join(COMPILE_BACKENDS)} "
                             "or None.")
        if self.weights_file is not None and not self.pretrained:
            raise ValueError("weights_file is only used with pretrained=True; drop it or set pretrained=True.")

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON dict of the settings."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Inverse of `to_dict`; unknown keys are an error so typos do not silently fall back to defaults."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"Unknown TrainConfig field(s) {unknown}; valid fields are {sorted(known)}.")
        return cls(**data)
