"""The web process's torch-free weights lookup agrees with the libraries' own cache paths."""

from pathlib import Path

import pytest

from mlworker.ml import MODEL_NAMES, weights_cache_path
from studyapp.experiments.weights import (
    hf_repo_folder,
    imagenet_weights_status,
    torch_hub_checkpoint,
)


@pytest.fixture
def caches(tmp_path, monkeypatch):
    import huggingface_hub.constants
    import torch.hub

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    return tmp_path


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_cache_paths_match_the_libraries(name, caches):
    light = torch_hub_checkpoint(name) if name == "squeezenet1_1" else hf_repo_folder(name)
    assert light == weights_cache_path(name)


def test_status_from_cts_weights_dir_and_caches(caches, settings):
    settings.CTS_WEIGHTS_DIR = str(caches / "weights")
    assert [imagenet_weights_status(n).available for n in MODEL_NAMES] == [False, False, False]
    missing = imagenet_weights_status("efficientnet_b0")
    assert missing.where == str(caches / "weights" / "efficientnet_b0.pth")
    (caches / "weights").mkdir()
    (caches / "weights" / "efficientnet_b0.pth").write_bytes(b"x")
    torch_file = torch_hub_checkpoint("squeezenet1_1")
    torch_file.parent.mkdir(parents=True)
    torch_file.write_bytes(b"x")
    snapshot = hf_repo_folder("mobilenetv2_100") / "snapshots" / "abc"
    snapshot.mkdir(parents=True)
    (snapshot / "model.safetensors").write_bytes(b"x")
    found = {n: imagenet_weights_status(n) for n in MODEL_NAMES}
    assert all(s.available for s in found.values())
    assert Path(found["efficientnet_b0"].where).parent == caches / "weights"
