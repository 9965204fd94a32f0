"""Where a model's ImageNet weights would be found, answered without importing torch (the web process).

The libraries' cache locations are re-derived from the same environment variables torch.hub and
huggingface_hub read; tests/studyapp/experiments/test_weights.py checks them against the libraries'
own answer (mlworker.ml.weights_cache_path). The worker checks again when it trains: its environment
may differ from the web server's.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

# What torchvision downloads for SqueezeNet 1.1, and timm's Hugging Face repos for the other two.
TORCH_HUB_FILES = {"squeezenet1_1": "squeezenet1_1-b8a52dc0.pth"}
HF_REPOS = {"mobilenetv2_100": "timm/mobilenetv2_100.ra_in1k", "efficientnet_b0": "timm/efficientnet_b0.ra_in1k"}
WEIGHTS_SUFFIXES = (".pth", ".pt", ".safetensors", ".bin")


@dataclass(frozen=True)
class WeightsStatus:
    available: bool
    where: str  # the file found, or what was looked for


def weights_file(model_name: str) -> str | None:
    """CTS_WEIGHTS_DIR/<model_name>.pth (or .pt, .safetensors, .bin) when it exists."""
    folder = settings.CTS_WEIGHTS_DIR
    if folder:
        for suffix in WEIGHTS_SUFFIXES:
            candidate = Path(folder) / f"{model_name}{suffix}"
            if candidate.exists():
                return str(candidate)
    return None


def expected_weights_file(model_name: str) -> str:
    """The file an installation puts in CTS_WEIGHTS_DIR for `model_name` (said in errors and on the form)."""
    folder = settings.CTS_WEIGHTS_DIR
    return str(Path(folder) / f"{model_name}.pth") if folder else f"$CTS_WEIGHTS_DIR/{model_name}.pth"


def _cache_root() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")


def torch_hub_checkpoint(model_name: str) -> Path:
    hub = Path(os.environ["TORCH_HOME"]) / "hub" if os.environ.get("TORCH_HOME") else _cache_root() / "torch" / "hub"
    return hub / "checkpoints" / TORCH_HUB_FILES[model_name]


def hf_repo_folder(model_name: str) -> Path:
    if os.environ.get("HF_HUB_CACHE"):
        cache = Path(os.environ["HF_HUB_CACHE"])
    elif os.environ.get("HF_HOME"):
        cache = Path(os.environ["HF_HOME"]) / "hub"
    else:
        cache = _cache_root() / "huggingface" / "hub"
    return cache / ("models--" + HF_REPOS[model_name].replace("/", "--"))


def imagenet_weights_status(model_name: str) -> WeightsStatus:
    """Whether ImageNet weights for `model_name` are on this machine: CTS_WEIGHTS_DIR, then the library cache."""
    local = weights_file(model_name)
    if local:
        return WeightsStatus(True, local)
    if model_name in TORCH_HUB_FILES:
        cached = torch_hub_checkpoint(model_name)
        if cached.is_file():
            return WeightsStatus(True, str(cached))
    else:
        folder = hf_repo_folder(model_name)
        found = [f for pattern in ("model.safetensors", "pytorch_model.bin")
                 for f in folder.glob(f"snapshots/*/{pattern}")]
        if found:
            return WeightsStatus(True, str(found[0]))
    return WeightsStatus(False, expected_weights_file(model_name))
