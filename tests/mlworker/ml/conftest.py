"""Shared fixtures for the ML core tests: tiny synthetic crops and network-free library caches."""

from __future__ import annotations

import urllib.error
from collections.abc import Callable
from pathlib import Path

import huggingface_hub.constants
import pytest
import torch
import torch.hub

from mlworker.ml import CropTensors


@pytest.fixture
def make_crops() -> Callable[..., CropTensors]:
    """Factory of learnable synthetic crops: CTS (label 1) frames carry a bright central square."""

    def factory(n: int = 16, *, size: int = 32, seed: int = 0, invert_labels: bool = False) -> CropTensors:
        g = torch.Generator().manual_seed(seed)
        labels = torch.arange(n) % 2
        images = (torch.rand(n, 1, size, size, generator=g) * 80).to(torch.uint8)
        q = size // 4
        images[labels == 1, :, q : size - q, q : size - q] += 150
        if invert_labels:
            labels = 1 - labels
        return CropTensors(images, labels, hand_ids=torch.arange(n) // 2, frame_ids=torch.arange(n) + 100)

    return factory


@pytest.fixture
def offline_caches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """Empty torch-hub and Hugging Face caches, HF offline mode, and a torch hub whose downloads fail."""
    torch_home = tmp_path / "torch_home"
    hf_home = tmp_path / "hf_home"
    monkeypatch.setenv("TORCH_HOME", str(torch_home))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)  # a set_dir() elsewhere would override TORCH_HOME
    monkeypatch.setenv("HF_HOME", str(hf_home))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # huggingface_hub reads these once at import; patch the module values it consults on every call.
    monkeypatch.setattr(huggingface_hub.constants, "HF_HOME", str(hf_home))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(hf_home / "hub"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)

    def no_network(*args: object, **kwargs: object) -> None:
        raise urllib.error.URLError("network disabled by the test")

    # torch.hub has no offline switch: make its download fail the way it does on an air-gapped worker.
    monkeypatch.setattr(torch.hub, "urlopen", no_network)
    return {"torch_home": torch_home, "hf_hub_cache": hf_home / "hub"}
