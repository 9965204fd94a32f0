"""Hyper-parameters of a training run: plain data the web process validates and the worker trains with.

No torch here, so the web process can check a launch without loading the ML stack.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from .constants import INPUT_SIZE, MODEL_NAMES

OPTIMIZERS = ("adam", "sgd", "adamw")


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

    def __post_init__(self) -> None:
        if self.model_name not in MODEL_NAMES:
            raise ValueError(f"model_name {self.model_name!r} is unknown; choose one of {', '.join(MODEL_NAMES)}.")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer {self.optimizer!r} is unknown; choose one of {', '.join(OPTIMIZERS)}.")
        if self.epochs < 1 or self.batch_size < 1 or self.input_size < 1:
            raise ValueError("epochs, batch_size and input_size must be >= 1.")
        if not self.lr > 0 or self.weight_decay < 0:
            raise ValueError(
                f"lr must be > 0 and weight_decay >= 0, got lr={self.lr}, weight_decay={self.weight_decay}."
            )
        if self.early_stopping_patience is not None and self.early_stopping_patience < 1:
            raise ValueError("early_stopping_patience must be >= 1, or None to train all epochs.")
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
