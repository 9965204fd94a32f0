"""Model factory: real library weight-loading paths with test-written weights, offline errors, forward passes."""

from __future__ import annotations

from pathlib import Path

import pytest
import safetensors.torch
import timm
import torch
import torchvision

from mlworker.ml import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    MODEL_LABELS,
    MODEL_NAMES,
    WeightsUnavailable,
    build_model,
    model_normalization,
    normalization,
    weights_cache_path,
)

TIMM_NAMES = ("mobilenetv2_100", "efficientnet_b0")


def _assert_same_except_head(model: torch.nn.Module, source: dict[str, torch.Tensor], head: str) -> None:
    loaded = model.state_dict()
    body = [k for k in source if not k.startswith(head + ".")]
    assert len(body) > 10
    for key in body:
        assert torch.equal(loaded[key], source[key]), key
    head_keys = [k for k in loaded if k.startswith(head + ".")]
    assert head_keys, "the model has no head under the expected name"
    assert all(loaded[k].shape[0] == 2 for k in head_keys)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_each_model_builds_and_runs_forward(name: str) -> None:
    torch.manual_seed(0)
    model = build_model(name, pretrained=False).eval()
    with torch.inference_mode():
        out = model(torch.randn(1, 3, 64, 64))
    assert out.shape == (1, 2)
    assert torch.isfinite(out).all()
    assert model_normalization(model) == normalization(name)
    assert name in MODEL_LABELS


def test_normalization_comes_from_library_config() -> None:
    for name in MODEL_NAMES:
        assert normalization(name) == (IMAGENET_MEAN, IMAGENET_STD)


def test_squeezenet_loads_imagenet_weights_from_torch_hub_cache(offline_caches: dict[str, Path]) -> None:
    path = weights_cache_path("squeezenet1_1")
    assert path == offline_caches["torch_home"] / "hub" / "checkpoints" / "squeezenet1_1-b8a52dc0.pth"
    torch.manual_seed(123)
    source = torchvision.models.squeezenet1_1(weights=None).state_dict()  # stands in for the ImageNet file
    path.parent.mkdir(parents=True)
    torch.save(source, path)

    torch.manual_seed(999)
    model = build_model("squeezenet1_1", num_classes=2, pretrained=True)
    _assert_same_except_head(model, source, "classifier.1")


def test_squeezenet_loads_weights_file(offline_caches: dict[str, Path], tmp_path: Path) -> None:
    torch.manual_seed(5)
    source = torchvision.models.squeezenet1_1(weights=None).state_dict()
    weights_file = tmp_path / "my_squeezenet.pth"
    torch.save(source, weights_file)

    model = build_model("squeezenet1_1", weights_file=weights_file)
    _assert_same_except_head(model, source, "classifier.1")
    assert not weights_cache_path("squeezenet1_1").exists()  # the cache was not needed


@pytest.mark.parametrize("name", TIMM_NAMES)
def test_timm_loads_weights_file(name: str, offline_caches: dict[str, Path], tmp_path: Path) -> None:
    torch.manual_seed(7)
    source = timm.create_model(name, pretrained=False).state_dict()  # 1000-class, like the ImageNet file
    weights_file = tmp_path / f"{name}.pth"
    torch.save(source, weights_file)

    torch.manual_seed(8)
    model = build_model(name, num_classes=2, weights_file=weights_file)
    _assert_same_except_head(model, source, "classifier")


def test_timm_loads_from_hugging_face_cache(offline_caches: dict[str, Path]) -> None:
    name = "mobilenetv2_100"
    repo_dir = weights_cache_path(name)
    assert repo_dir == offline_caches["hf_hub_cache"] / "models--timm--mobilenetv2_100.ra_in1k"
    commit = "0" * 40
    (repo_dir / "refs").mkdir(parents=True)
    (repo_dir / "refs" / "main").write_text(commit)
    snapshot = repo_dir / "snapshots" / commit
    snapshot.mkdir(parents=True)
    torch.manual_seed(11)
    source = timm.create_model(name, pretrained=False).state_dict()
    safetensors.torch.save_file({k: v.contiguous() for k, v in source.items()}, snapshot / "model.safetensors")

    model = build_model(name, pretrained=True)
    _assert_same_except_head(model, source, "classifier")


def test_offline_torchvision_raises_weights_unavailable(offline_caches: dict[str, Path]) -> None:
    with pytest.raises(WeightsUnavailable) as info:
        build_model("squeezenet1_1", pretrained=True)
    message = str(info.value)
    assert str(weights_cache_path("squeezenet1_1")) in message
    assert "squeezenet1_1-b8a52dc0.pth" in message
    assert "pretrained=False" in message
    assert isinstance(info.value, RuntimeError)


def test_corrupt_torch_hub_cache_file_is_named(offline_caches: dict[str, Path]) -> None:
    path = weights_cache_path("squeezenet1_1")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsUnavailable, match="cannot be read") as info:
        build_model("squeezenet1_1")
    assert str(path) in str(info.value) and "Delete that file" in str(info.value)


@pytest.mark.parametrize("name", TIMM_NAMES)
def test_offline_timm_raises_weights_unavailable(name: str, offline_caches: dict[str, Path]) -> None:
    with pytest.raises(WeightsUnavailable) as info:
        build_model(name, pretrained=True)
    message = str(info.value)
    assert str(weights_cache_path(name)) in message
    assert f"timm/{name}.ra_in1k" in message
    assert "pretrained=False" in message


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_missing_weights_file_names_the_file(name: str, offline_caches: dict[str, Path], tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "weights.pth"
    with pytest.raises(WeightsUnavailable, match="nowhere/weights.pth") as info:
        build_model(name, weights_file=missing)
    assert "pretrained=False" in str(info.value)


def test_wrong_weights_file_is_reported(offline_caches: dict[str, Path], tmp_path: Path) -> None:
    wrong = tmp_path / "mobilenet.pth"
    torch.save(timm.create_model("mobilenetv2_100", pretrained=False).state_dict(), wrong)
    with pytest.raises(WeightsUnavailable, match="does not hold a squeezenet1_1"):
        build_model("squeezenet1_1", weights_file=wrong)


def test_bad_arguments_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="choose one of"):
        build_model("resnet50", pretrained=False)
    with pytest.raises(ValueError, match="pretrained=True"):
        build_model("squeezenet1_1", pretrained=False, weights_file=tmp_path / "w.pth")


def test_squeezenet_head_gives_raw_logits_that_can_be_negative():
    torch.manual_seed(0)
    model = build_model("squeezenet1_1", pretrained=False).eval()
    assert not any(isinstance(m, torch.nn.ReLU) for m in model.classifier)
    with torch.no_grad():
        model.classifier[1].bias.fill_(-5.0)  # a head pushed negative must show it, not clip to 0
        logits = model(torch.randn(2, 3, 64, 64))
    assert (logits < 0).all()


@pytest.mark.parametrize("name", TIMM_NAMES)
def test_unreachable_hub_fails_in_seconds_without_offline_mode(name: str, offline_caches: dict[str, Path],
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    import huggingface_hub.constants

    # Offline mode not set, as on a fresh worker; the hub at a closed local port stands for no network.
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", "http://127.0.0.1:9")
    began = time.monotonic()
    with pytest.raises(WeightsUnavailable, match="127.0.0.1 cannot be reached") as info:
        build_model(name, pretrained=True)
    assert time.monotonic() - began < 5  # the hub's own retries take ~45 s
    assert str(weights_cache_path(name)) in str(info.value)
    assert huggingface_hub.constants.HF_HUB_OFFLINE is False  # restored after the attempt
