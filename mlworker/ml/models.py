"""Model factory: SqueezeNet 1.1 (torchvision), MobileNetV2 and EfficientNet-B0 (timm), ImageNet transfer."""

from __future__ import annotations

import contextlib
import os
import pickle
import socket
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from urllib.parse import urlparse

import timm
import torch
import torchvision
from torch import nn
from torchvision.models import SqueezeNet1_1_Weights

from .constants import IMAGENET_MEAN, IMAGENET_STD, INPUT_SIZE, MODEL_NAMES, TIMM_MODELS, TORCHVISION_MODELS

__all__ = [
    "WeightsUnavailable",
    "build_model",
    "weights_cache_path",
    "normalization",
    "model_normalization",
]

# Pretrained weights of the torchvision model(s); the enum knows the URL, file name and transforms.
_TORCHVISION_WEIGHTS = {"squeezenet1_1": SqueezeNet1_1_Weights.IMAGENET1K_V1}


# Long enough for a slow DNS answer, short enough that an air-gapped worker fails in seconds.
REACHABLE_TIMEOUT_S = 3.0


class WeightsUnavailable(RuntimeError):
    """ImageNet weights could not be loaded (offline, missing or unreadable file)."""


def _reachable(url: str, timeout: float = REACHABLE_TIMEOUT_S) -> bool:
    """Whether a TCP connection to the host of `url` opens within `timeout` (DNS included)."""
    parsed = urlparse(url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)

    def connect() -> bool:
        with socket.create_connection((parsed.hostname, port), timeout=timeout):
            return True

    # getaddrinfo ignores socket timeouts; a thread bounds a DNS lookup that hangs.
    pool = ThreadPoolExecutor(max_workers=1)
    try:
        return pool.submit(connect).result(timeout=timeout)
    except (OSError, FutureTimeout):
        return False
    finally:
        pool.shutdown(wait=False)


@contextlib.contextmanager
def _hf_offline() -> Iterator[None]:
    """Hugging Face hub offline for the duration: cached files load, missing ones fail at once (no retries)."""
    from huggingface_hub import constants as hf_constants

    previous = hf_constants.HF_HUB_OFFLINE
    hf_constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        hf_constants.HF_HUB_OFFLINE = previous


def _check_name(name: str) -> None:
    if name not in MODEL_NAMES:
        raise ValueError(f"Unknown model {name!r}; choose one of {', '.join(MODEL_NAMES)}.")


def _hf_hub_id(name: str) -> str:
    cfg = timm.models.get_pretrained_cfg(name)
    if cfg is None or not cfg.hf_hub_id:
        raise ValueError(f"timm has no Hugging Face weights entry for {name!r}.")
    return cfg.hf_hub_id.split("@")[0]


def weights_cache_path(name: str) -> Path:
    """Where the library looks for the ImageNet weights of `name` (file for torchvision, HF repo folder for timm)."""
    _check_name(name)
    if name in TORCHVISION_MODELS:
        url = _TORCHVISION_WEIGHTS[name].url
        return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(url).path)
    # Read the HF cache root at call time: huggingface_hub resolves it from HF_HOME/HF_HUB_CACHE at import.
    from huggingface_hub import constants as hf_constants
    from huggingface_hub.file_download import repo_folder_name

    return Path(hf_constants.HF_HUB_CACHE) / repo_folder_name(repo_id=_hf_hub_id(name), repo_type="model")


def normalization(name: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(mean, std) the pretrained weights of `name` expect, from the library config, else ImageNet's."""
    _check_name(name)
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    if name in TORCHVISION_MODELS:
        preset = _TORCHVISION_WEIGHTS[name].transforms()
        mean, std = getattr(preset, "mean", None), getattr(preset, "std", None)
    else:
        cfg = timm.models.get_pretrained_cfg(name)
        if cfg is not None:
            mean, std = cfg.mean, cfg.std
    if not mean or not std:
        return IMAGENET_MEAN, IMAGENET_STD
    return tuple(float(m) for m in mean), tuple(float(s) for s in std)


def model_normalization(model: nn.Module) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(mean, std) recorded on a model built by `build_model` (timm's `pretrained_cfg` convention)."""
    cfg = getattr(model, "pretrained_cfg", None) or {}
    mean, std = cfg.get("mean"), cfg.get("std")
    if not mean or not std:
        return IMAGENET_MEAN, IMAGENET_STD
    return tuple(float(m) for m in mean), tuple(float(s) for s in std)


def _torchvision_unavailable(name: str, reason: str) -> WeightsUnavailable:
    weights = _TORCHVISION_WEIGHTS[name]
    path = weights_cache_path(name)
    return WeightsUnavailable(
        f"ImageNet weights for {name} are not available: {reason}. "
        f"Either put {os.path.basename(urlparse(weights.url).path)} (from {weights.url}) at {path} "
        f"(torchvision's cache, $TORCH_HOME/hub/checkpoints, TORCH_HOME={os.environ.get('TORCH_HOME', 'unset')}) "
        f"or pass weights_file=<that file>, or run with pretrained=False (random initialisation, no transfer learning)."
    )


def _timm_unavailable(name: str, reason: str) -> WeightsUnavailable:
    hub_id = _hf_hub_id(name)
    return WeightsUnavailable(
        f"ImageNet weights for {name} are not available: {reason}. "
        f"Either put the Hugging Face repo {hub_id} in the HF cache at {weights_cache_path(name)} "
        f"(on a machine with network run `hf download {hub_id} model.safetensors` and copy its cache; "
        f"the cache root follows HF_HOME/HF_HUB_CACHE; set HF_HUB_OFFLINE=1 to skip download retries) "
        f"or pass weights_file=<a local model.safetensors or .pth of {hub_id}>, "
        f"or run with pretrained=False (random initialisation, no transfer learning)."
    )


def _build_squeezenet(name: str, num_classes: int, pretrained: bool, weights_file: Path | None) -> nn.Module:
    weights = _TORCHVISION_WEIGHTS[name]
    if not pretrained:
        model = torchvision.models.squeezenet1_1(weights=None, num_classes=num_classes)
    else:
        if weights_file is None:
            cached = weights_cache_path(name)
            if not cached.is_file() and not _reachable(weights.url):
                # urllib has no timeout here: on a host without network it can hang, so fail before trying.
                raise _torchvision_unavailable(name, f"{urlparse(weights.url).hostname} cannot be reached and "
                                                     "the file is not in the cache")
            try:
                # torchvision's own path: $TORCH_HOME/hub/checkpoints/<file> if present, else a download.
                model = torchvision.models.squeezenet1_1(weights=weights, progress=False)
            except OSError as exc:  # URLError, no space, unreadable cache file
                raise _torchvision_unavailable(name, f"torchvision could not load or download it ({exc})") from exc
            except (RuntimeError, EOFError, pickle.UnpicklingError) as exc:
                # A truncated or foreign file in the cache: torch.load's own message does not say which file.
                raise WeightsUnavailable(
                    f"The cached ImageNet weights for {name} at {weights_cache_path(name)} cannot be read ({exc}). "
                    f"Delete that file so torchvision downloads it again, replace it with {weights.url}, "
                    "or run with pretrained=False (random initialisation)."
                ) from exc
        else:
            if not weights_file.is_file():
                raise _torchvision_unavailable(name, f"weights_file {weights_file} does not exist")
            model = torchvision.models.squeezenet1_1(weights=None, num_classes=len(weights.meta["categories"]))
            try:
                # Same loader the weights enum uses, pointed at the local file; weights_only as it is user-supplied.
                state = weights.get_state_dict(
                    model_dir=str(weights_file.parent), file_name=weights_file.name, progress=False, weights_only=True
                )
                model.load_state_dict(state)
            except (OSError, RuntimeError, KeyError) as exc:
                raise WeightsUnavailable(
                    f"weights_file {weights_file} does not hold a {name} ImageNet state dict ({exc}). "
                    f"Pass the file torchvision publishes at {weights.url}, or run with pretrained=False."
                ) from exc
        # New task head, initialised the way torchvision initialises its final conv.
        final_conv = nn.Conv2d(512, num_classes, kernel_size=1)
        nn.init.normal_(final_conv.weight, mean=0.0, std=0.01)
        nn.init.zeros_(final_conv.bias)
        model.classifier[1] = final_conv
        model.num_classes = num_classes
    # SqueezeNet ends in ReLU, so its logits can't go negative: a two-class head whose logits both reach 0
    # stays at p = 0.5 for good (seen on phantom data with random init). Raw logits, as the other models give.
    model.classifier[2] = nn.Identity()
    mean, std = normalization(name)
    # Recorded timm-style so evaluation code can read normalisation off any model this factory builds.
    model.pretrained_cfg = {
        "architecture": name,
        "source": "torchvision",
        "url": weights.url,
        "input_size": (3, INPUT_SIZE, INPUT_SIZE),
        "mean": mean,
        "std": std,
        "num_classes": num_classes,
        "classifier": "classifier.1",
    }
    return model


def _build_timm(name: str, num_classes: int, pretrained: bool, weights_file: Path | None) -> nn.Module:
    kwargs: dict = {"num_classes": num_classes, "pretrained": pretrained}
    if pretrained and weights_file is not None:
        if not weights_file.is_file():
            raise _timm_unavailable(name, f"weights_file {weights_file} does not exist")
        kwargs["pretrained_cfg_overlay"] = {"file": str(weights_file)}
    offline = contextlib.nullcontext()
    if pretrained and weights_file is None:
        from huggingface_hub import constants as hf_constants

        # Without this the hub retries each candidate file five times with backoff: ~45 s before failing.
        if not hf_constants.HF_HUB_OFFLINE and not _reachable(hf_constants.ENDPOINT):
            offline = _hf_offline()
    try:
        # timm drops the 1000-class classifier weights itself when num_classes differs.
        with offline:
            return timm.create_model(name, **kwargs)
    except OSError as exc:  # LocalEntryNotFoundError, OfflineModeIsEnabled, URLError, HTTP errors
        if isinstance(offline, contextlib.nullcontext):
            reason = f"timm could not load or download them ({type(exc).__name__}: {exc})"
            raise _timm_unavailable(name, reason) from exc
        raise _timm_unavailable(name, f"{urlparse(hf_constants.ENDPOINT).hostname} cannot be reached and they are "
                                      "not in the Hugging Face cache") from exc
    except RuntimeError as exc:
        if weights_file is None:
            raise
        raise WeightsUnavailable(
            f"weights_file {weights_file} does not fit {name} ({exc}). "
            f"Pass model.safetensors of {_hf_hub_id(name)}, or run with pretrained=False."
        ) from exc


def build_model(
    name: str, *, num_classes: int = 2, pretrained: bool = True, weights_file: Path | str | None = None
) -> nn.Module:
    """Build `name` with a `num_classes` head, from ImageNet weights when `pretrained` (random init otherwise)."""
    _check_name(name)
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}.")
    if weights_file is not None and not pretrained:
        raise ValueError("weights_file is only read when pretrained=True; drop weights_file or set pretrained=True.")
    path = Path(weights_file) if weights_file is not None else None
    if name in TORCHVISION_MODELS:
        return _build_squeezenet(name, num_classes, pretrained, path)
    assert name in TIMM_MODELS
    return _build_timm(name, num_classes, pretrained, path)
