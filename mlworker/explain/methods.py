"""Attribution maps for the CTS class: occlusion sensitivity, LIME and Grad-CAM, one interface, batched on the device.

Every method takes uint8 grey crops (N, 1, S, S) as `load_crops` makes them, runs them through the model with the
same preprocessing and precision as evaluation (`GreyNormalizer`, `autocast`) and returns float32 maps (N, S, S)
at crop resolution; larger values mean more evidence for CTS.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mlworker.ml import LABEL_CONTROL, LABEL_CTS, GreyNormalizer, autocast, model_normalization, prepare_model

from .segmentation import speckle_superpixels

__all__ = [
    "METHODS",
    "GRADCAM_LAYERS",
    "OcclusionParams",
    "LimeParams",
    "GradCamParams",
    "default_params",
    "params_from_dict",
    "resolved_params",
    "explain_crops",
    "gradcam_layer",
]

METHODS: tuple[str, ...] = ("occlusion", "lime", "gradcam")

# Last convolutional stage of each study model: SqueezeNet's feature extractor (its classifier is a 1x1 conv on
# it), and timm's post-activation head conv (`conv_head` + `bn2`, the output of `forward_features`).
GRADCAM_LAYERS: dict[str, str] = {"squeezenet1_1": "features", "mobilenetv2_100": "bn2", "efficientnet_b0": "bn2"}


def _check_positive(owner: str, **values: float) -> None:
    for name, value in values.items():
        if not value > 0:
            raise ValueError(f"{owner}.{name} must be > 0, got {value!r}.")


@dataclass(frozen=True)
class OcclusionParams:
    """Occluding patch and its stride in millimetres; 2 mm at 0.5 mm covers a ~3-4 mm median nerve in a 15 mm crop."""

    patch_mm: float = 2.0
    stride_mm: float = 0.5
    batch_size: int = 256

    def __post_init__(self) -> None:
        _check_positive("OcclusionParams", patch_mm=self.patch_mm, stride_mm=self.stride_mm,
                        batch_size=self.batch_size)

    def pixels(self, mm_per_px: float, size: int) -> tuple[int, int]:
        """(patch, stride) in crop pixels: at least 1, the patch at most the crop."""
        patch = min(size, max(1, round(self.patch_mm / mm_per_px)))
        return patch, max(1, round(self.stride_mm / mm_per_px))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class LimeParams:
    """LIME samples and the superpixels it switches on and off (SLIC on the crop smoothed over `smooth_mm`)."""

    num_samples: int = 1000
    n_segments: int = 50
    compactness: float = 0.3
    smooth_mm: float = 0.5
    kernel_width: float = 0.25
    batch_size: int = 256

    def __post_init__(self) -> None:
        _check_positive("LimeParams", num_samples=self.num_samples, n_segments=self.n_segments,
                        compactness=self.compactness, kernel_width=self.kernel_width, batch_size=self.batch_size)
        if self.smooth_mm < 0:
            raise ValueError(f"LimeParams.smooth_mm must be >= 0, got {self.smooth_mm!r}.")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class GradCamParams:
    """Layer whose activations and gradients make the map; None: the model's last convolutional stage."""

    layer: str | None = None
    batch_size: int = 64

    def __post_init__(self) -> None:
        _check_positive("GradCamParams", batch_size=self.batch_size)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


Params = Union[OcclusionParams, LimeParams, GradCamParams]
_PARAMS: dict[str, type] = {"occlusion": OcclusionParams, "lime": LimeParams, "gradcam": GradCamParams}


def _check_method(method: str) -> None:
    if method not in METHODS:
        raise ValueError(f"Unknown explanation method {method!r}; choose one of {', '.join(METHODS)}.")


def default_params(method: str) -> Params:
    """The parameters `explain_crops` uses for `method` when given none."""
    _check_method(method)
    return _PARAMS[method]()


def params_from_dict(method: str, data: dict[str, Any]) -> Params:
    """Inverse of `to_dict`; unknown keys are an error so a typo never falls back to a default silently."""
    _check_method(method)
    cls = _PARAMS[method]
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"Unknown {method} parameter(s) {unknown}; valid ones are {sorted(known)}.")
    return cls(**data)


def resolved_params(method: str, params: Params | None, *, mm_per_px: float, size: int,
                    model: nn.Module | None = None) -> dict[str, Any]:
    """`params.to_dict()` plus what they became on this crop (pixels, layer): the record stored beside the maps."""
    params = _check_params(method, params)
    record = params.to_dict()
    if isinstance(params, OcclusionParams):
        record["patch_px"], record["stride_px"] = params.pixels(mm_per_px, size)
    elif isinstance(params, LimeParams):
        record["smooth_px"] = params.smooth_mm / mm_per_px
    elif model is not None:
        record["layer"] = params.layer or gradcam_layer(model)
    record["mm_per_px"] = mm_per_px
    return record


def _check_params(method: str, params: Params | None) -> Params:
    _check_method(method)
    if params is None:
        return default_params(method)
    if not isinstance(params, _PARAMS[method]):
        raise TypeError(f"{method} takes {_PARAMS[method].__name__}, got {type(params).__name__}.")
    return params


def explain_crops(method: str, model: nn.Module, images: torch.Tensor, *, mm_per_px: float,
                  params: Params | None = None, device: torch.device | str, seed: int = 0) -> np.ndarray:
    """Float32 attribution maps (N, S, S) for the CTS class of uint8 grey crops (N, 1, S, S).

    `mm_per_px` is the crop's side in millimetres over S. The model is put in eval mode on `device`. Maps do
    not depend on which other crops share the call, and the same inputs and seed give the same maps.
    """
    params = _check_params(method, params)
    if images.dtype != torch.uint8 or images.dim() != 4 or images.shape[1] != 1:
        raise ValueError(f"images must be uint8 (N, 1, S, S) crops as load_crops makes them, "
                         f"got {images.dtype} {tuple(images.shape)}.")
    if images.shape[-1] != images.shape[-2]:
        raise ValueError(f"Crops must be square, got {tuple(images.shape[-2:])}.")
    if not mm_per_px > 0:
        raise ValueError(f"mm_per_px must be > 0 (crop side in mm / crop pixels), got {mm_per_px!r}.")
    device = torch.device(device)
    model = prepare_model(model, device).eval()
    if images.shape[0] == 0:
        return np.empty((0, images.shape[-1], images.shape[-1]), dtype=np.float32)
    if isinstance(params, OcclusionParams):
        return _occlusion(model, images, mm_per_px=mm_per_px, params=params, device=device)
    if isinstance(params, LimeParams):
        return _lime(model, images, mm_per_px=mm_per_px, params=params, device=device, seed=seed)
    return _gradcam(model, images, params=params, device=device)


class _Classifier:
    """P(classes) of float grey crops in [0, 1] on the device, through evaluation's preprocessing and precision."""

    def __init__(self, model: nn.Module, device: torch.device) -> None:
        self.model, self.device = model, device
        self.normalise = GreyNormalizer(*model_normalization(model), device=device)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        x = self.normalise(x)
        if self.device.type == "cuda":
            x = x.contiguous(memory_format=torch.channels_last)
        with autocast(self.device):
            return self.model(x).float()

    def probs(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.logits(x), dim=1)


# -- occlusion sensitivity ---------------------------------------------------------------------------------------

def _starts(size: int, patch: int, stride: int) -> list[int]:
    """Patch offsets along one axis; the last one flush with the edge so every pixel is covered."""
    starts = list(range(0, size - patch + 1, stride))
    if starts[-1] != size - patch:
        starts.append(size - patch)
    return starts


def _patch_masks(size: int, patch: int, stride: int, device: torch.device) -> torch.Tensor:
    """Bool (P, S, S): one mask per patch position, row-major."""
    starts = torch.tensor(_starts(size, patch, stride), device=device)
    pos = torch.arange(size, device=device)
    inside = (pos >= starts[:, None]) & (pos < starts[:, None] + patch)  # (K, S)
    masks = inside[:, None, :, None] & inside[None, :, None, :]  # (K, K, S, S): rows x columns
    return masks.reshape(-1, size, size)


def _occlusion(model: nn.Module, images: torch.Tensor, *, mm_per_px: float, params: OcclusionParams,
               device: torch.device) -> np.ndarray:
    n, size = images.shape[0], images.shape[-1]
    patch, stride = params.pixels(mm_per_px, size)
    classify = _Classifier(model, device)
    masks = _patch_masks(size, patch, stride, device)
    n_pos = masks.shape[0]
    coverage = masks.sum(0, dtype=torch.float32)
    crops = images.to(device)  # uint8: a study's test set fits easily; variants are made batch by batch
    bs = params.batch_size
    with torch.inference_mode():
        base = torch.cat([classify.probs(GreyNormalizer.to_unit(crops[i : i + bs]))[:, LABEL_CTS]
                          for i in range(0, n, bs)])
        fill = torch.cat([GreyNormalizer.to_unit(crops[i : i + bs]).mean((1, 2, 3)) for i in range(0, n, bs)])
        drops = torch.empty((n, n_pos), dtype=torch.float32, device=device)
        flat = drops.view(-1)
        # Variants of consecutive crops share a batch, so every forward pass is full whatever the patch count.
        for v in range(0, n * n_pos, bs):
            idx = torch.arange(v, min(v + bs, n * n_pos), device=device)
            crop_idx, pos_idx = idx // n_pos, idx % n_pos
            x = GreyNormalizer.to_unit(crops[crop_idx])
            x = torch.where(masks[pos_idx][:, None], fill[crop_idx].view(-1, 1, 1, 1), x)
            flat[v : v + len(idx)] = base[crop_idx] - classify.probs(x)[:, LABEL_CTS]
        # Each pixel: the mean drop over the patches that covered it (a matrix product over positions).
        flat_masks = masks.view(n_pos, -1).float()
        maps = [(drops[i : i + 64] @ flat_masks).view(-1, size, size) / coverage for i in range(0, n, 64)]
        return torch.cat(maps).cpu().numpy().astype(np.float32)


# -- LIME --------------------------------------------------------------------------------------------------------

class _LimeClassifier(_Classifier):
    """LIME's `classifier_fn` (numpy images in, probabilities out) that can also build the perturbations itself."""

    def __call__(self, images: np.ndarray) -> np.ndarray:
        # LIME hands over (B, H, W, 3) copies of the grey crop; one channel carries it all.
        x = torch.from_numpy(np.ascontiguousarray(images[..., 0], dtype=np.float32)).to(self.device)[:, None]
        with torch.inference_mode():
            return self.probs(x).double().cpu().numpy()

    def perturbed(self, image: np.ndarray, fudged: np.ndarray, segments: np.ndarray, data: np.ndarray,
                  batch_size: int) -> np.ndarray:
        """Probabilities of the images where the segments off in each row of `data` show `fudged` (as LIME makes)."""
        img = torch.from_numpy(np.ascontiguousarray(image[..., 0], dtype=np.float32)).to(self.device)
        fud = torch.from_numpy(np.ascontiguousarray(fudged[..., 0], dtype=np.float32)).to(self.device)
        seg = torch.from_numpy(segments.astype(np.int64)).to(self.device)
        rows = torch.from_numpy(data.astype(bool)).to(self.device)
        out = []
        with torch.inference_mode():
            for i in range(0, rows.shape[0], batch_size):
                keep = rows[i : i + batch_size][:, seg]  # (B, H, W): segment of each pixel switched on
                out.append(self.probs(torch.where(keep, img, fud)[:, None]))
        return torch.cat(out).double().cpu().numpy()


def _lime_explainer_class() -> type:
    from lime import lime_image

    class DeviceLimeExplainer(lime_image.LimeImageExplainer):
        """LimeImageExplainer whose perturbed images are made on the device, a batch at a time.

        The package builds each of the num_samples images in a Python loop over segments, which costs more than
        the model on a GPU; this draws the same samples from the same random state and classifies the same images.
        """

        def data_labels(self, image, fudged_image, segments, classifier_fn, num_samples, batch_size=10):
            n_features = np.unique(segments).shape[0]
            data = self.random_state.randint(0, 2, num_samples * n_features).reshape((num_samples, n_features))
            data[0, :] = 1
            return data, classifier_fn.perturbed(image, fudged_image, segments, data, batch_size)

    return DeviceLimeExplainer


def _lime(model: nn.Module, images: torch.Tensor, *, mm_per_px: float, params: LimeParams, device: torch.device,
          seed: int, explainer_class: type | None = None) -> np.ndarray:
    # `explainer_class`: the package's own LimeImageExplainer lets the benchmark time its per-sample loop.
    explainer_class = explainer_class or _lime_explainer_class()
    classify = _LimeClassifier(model, device)
    sigma_px = params.smooth_mm / mm_per_px

    def segment(image: np.ndarray) -> np.ndarray:
        return speckle_superpixels(image[..., 0], n_segments=params.n_segments, compactness=params.compactness,
                                   sigma_px=sigma_px)

    maps = np.empty((images.shape[0], images.shape[-1], images.shape[-1]), dtype=np.float32)
    for i, crop in enumerate(images[:, 0].numpy()):
        # A fresh random state per crop: a crop's map does not depend on the others explained with it.
        explainer = explainer_class(kernel_width=params.kernel_width, feature_selection="none", random_state=seed)
        image = crop.astype(np.float64) / 255.0
        # A segment switched off shows the crop mean, the baseline occlusion uses. LIME's default (each segment's
        # own mean) leaves a homogeneous region such as a bright nerve as it is, so it could never matter.
        explanation = explainer.explain_instance(
            image, classify, labels=(LABEL_CTS,), hide_color=float(image.mean()), top_labels=None,
            num_features=params.n_segments * 4,  # unused with feature_selection "none": every segment gets a weight
            num_samples=params.num_samples, batch_size=params.batch_size,
            segmentation_fn=segment, random_seed=seed,
        )
        weights = np.zeros(int(explanation.segments.max()) + 1, dtype=np.float32)
        for segment_id, weight in explanation.local_exp[LABEL_CTS]:
            weights[segment_id] = weight
        maps[i] = weights[explanation.segments]
    return maps


# -- Grad-CAM ----------------------------------------------------------------------------------------------------

def gradcam_layer(model: nn.Module) -> str:
    """Name of the model's last convolutional stage: the study models' known one, else its last Conv2d."""
    arch = (getattr(model, "pretrained_cfg", None) or {}).get("architecture")
    if arch in GRADCAM_LAYERS:
        return GRADCAM_LAYERS[arch]
    convs = [name for name, module in model.named_modules() if isinstance(module, nn.Conv2d)]
    if not convs:
        raise ValueError(f"{type(model).__name__} has no Conv2d layer; name one with GradCamParams(layer=...).")
    return convs[-1]


def _gradcam(model: nn.Module, images: torch.Tensor, *, params: GradCamParams, device: torch.device) -> np.ndarray:
    name = params.layer or gradcam_layer(model)
    modules = dict(model.named_modules())
    if name not in modules:
        raise ValueError(f"{type(model).__name__} has no layer {name!r}; use one of its named_modules().")
    size = images.shape[-1]
    captured: list[torch.Tensor] = []
    handle = modules[name].register_forward_hook(lambda _m, _i, out: captured.append(out))
    maps = []
    try:
        # Gradients are needed even if the caller runs under inference_mode or no_grad.
        with torch.inference_mode(False), torch.enable_grad():
            classify = _Classifier(model, device)  # its constants must not be inference tensors either
            for i in range(0, images.shape[0], params.batch_size):
                captured.clear()
                x = GreyNormalizer.to_unit(images[i : i + params.batch_size].to(device)).requires_grad_(True)
                logits = classify.logits(x)
                act = captured[-1]
                # Only the margin moves P(CTS) in a two-class softmax. Samples are independent in eval mode,
                # so the gradient of the sum is each sample's own; parameter gradients are never computed.
                margin = (logits[:, LABEL_CTS] - logits[:, LABEL_CONTROL]).sum()
                (grad,) = torch.autograd.grad(margin, act)
                weights = grad.float().mean((2, 3), keepdim=True)
                cam = F.relu((weights * act.detach().float()).sum(1, keepdim=True))
                cam = F.interpolate(cam, size=(size, size), mode="bilinear", align_corners=False)
                maps.append(cam[:, 0].cpu())
    finally:
        handle.remove()
    return torch.cat(maps).numpy().astype(np.float32)
