"""Attribution methods: each finds the region a hand-built model looks at; batching, seeding, the study models."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from lime import lime_image
from torch import nn

from mlworker.explain.methods import (
    GRADCAM_LAYERS,
    METHODS,
    GradCamParams,
    LimeParams,
    OcclusionParams,
    _lime_explainer_class,
    _LimeClassifier,
    default_params,
    explain_crops,
    gradcam_layer,
    params_from_dict,
    resolved_params,
)
from mlworker.explain.segmentation import speckle_superpixels
from mlworker.ml import MODEL_NAMES, build_model

SIZE = 48
MM_PER_PX = 15.0 / SIZE
BOX = (slice(8, 22), slice(26, 42))  # rows, columns the hand-built models look at


def _box_mask(size: int = SIZE) -> np.ndarray:
    mask = np.zeros((size, size), dtype=bool)
    mask[BOX] = True
    return mask


class BoxMeanModel(nn.Module):
    """CTS logit = the mean of the (normalised) box; the control logit is 0. Nothing outside the box matters."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = x[:, 0, BOX[0], BOX[1]].mean((1, 2))
        return torch.stack([torch.zeros_like(m), m], dim=1)


class TinyConvNet(nn.Module):
    """A conv stage ("stage") then the mean of its activations over the box as the CTS logit."""

    def __init__(self) -> None:
        super().__init__()
        conv = nn.Conv2d(3, 4, kernel_size=3, padding=1)
        with torch.no_grad():
            conv.weight.fill_(1.0 / 27)  # local brightness, same in every channel
            conv.bias.zero_()
        self.stage = nn.Sequential(conv, nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.stage(x)
        m = a[:, :, BOX[0], BOX[1]].mean((1, 2, 3))
        return torch.stack([torch.zeros_like(m), m], dim=1)


def _crops(n: int = 3, seed: int = 0, size: int = SIZE) -> torch.Tensor:
    """Dim speckle-like noise with a bright box where the models look (a CTS-looking crop)."""
    g = torch.Generator().manual_seed(seed)
    images = (torch.rand(n, 1, size, size, generator=g) * 60 + 20).to(torch.uint8)
    images[:, :, BOX[0], BOX[1]] += 150
    return images


def test_occlusion_map_peaks_in_the_box() -> None:
    maps = explain_crops("occlusion", BoxMeanModel(), _crops(), mm_per_px=MM_PER_PX, device="cpu",
                         params=OcclusionParams(patch_mm=2.0, stride_mm=0.6))
    assert maps.shape == (3, SIZE, SIZE) and maps.dtype == np.float32
    box = _box_mask()
    for m in maps:
        assert box.flat[m.argmax()]
        # Occluding the bright box with the (darker) crop mean lowers P(CTS); patches far from it change nothing.
        assert m[box].mean() > 0.03
        assert np.abs(m[:, :12]).max() < 1e-6  # columns 0-11 never share a patch with the box


def test_occlusion_runs_all_patches_of_many_crops_in_a_few_large_batches() -> None:
    model = BoxMeanModel()
    calls: list[int] = []
    model.register_forward_hook(lambda _m, inputs, _o: calls.append(inputs[0].shape[0]))
    params = OcclusionParams(patch_mm=2.0, stride_mm=0.6, batch_size=200)
    patch, stride = params.pixels(MM_PER_PX, SIZE)
    per_axis = len(range(0, SIZE - patch + 1, stride)) + ((SIZE - patch) % stride != 0)
    n, positions = 4, per_axis**2
    explain_crops("occlusion", model, _crops(n), mm_per_px=MM_PER_PX, device="cpu", params=params)
    # One pass over the unoccluded crops, then every variant of every crop in batches of 200.
    assert sum(calls) == n + n * positions
    assert len(calls) == 1 + -(-n * positions // 200)
    assert len(calls) < positions
    assert max(calls) == 200


def test_a_crop_gets_the_same_occlusion_map_alone_and_among_others() -> None:
    crops = _crops(3)
    params = OcclusionParams(patch_mm=2.0, stride_mm=0.6, batch_size=50)
    together = explain_crops("occlusion", BoxMeanModel(), crops, mm_per_px=MM_PER_PX, device="cpu", params=params)
    alone = explain_crops("occlusion", BoxMeanModel(), crops[1:2], mm_per_px=MM_PER_PX, device="cpu", params=params)
    np.testing.assert_allclose(alone[0], together[1], atol=1e-6)


def test_lime_top_segments_lie_in_the_box() -> None:
    params = LimeParams(num_samples=300, n_segments=30)
    crops = _crops(2)
    maps = explain_crops("lime", BoxMeanModel(), crops, mm_per_px=MM_PER_PX, device="cpu", params=params)
    assert maps.shape == (2, SIZE, SIZE) and maps.dtype == np.float32
    box = _box_mask()
    for crop, m in zip(crops[:, 0].numpy(), maps):
        segments = speckle_superpixels(crop / 255.0, n_segments=30, compactness=params.compactness,
                                       sigma_px=params.smooth_mm / MM_PER_PX)
        weight = np.array([m[segments == s][0] for s in range(segments.max() + 1)])
        # Every segment that carries weight (over a tenth of the top one's) lies mostly in the box ...
        for s in np.flatnonzero(weight > 0.1 * weight.max()):
            assert box[segments == s].mean() > 0.5, f"segment {s} (weight {weight[s]:.3f}) lies outside the box"
        # ... and so does most of the positive attribution.
        positive = np.clip(m, 0, None)
        assert positive[box].sum() > 0.8 * positive.sum()
        # Segments wholly outside the box do not move the model: their weights stay near zero.
        outside = [s for s in range(len(weight)) if not box[segments == s].any()]
        assert outside and np.abs(weight[outside]).max() < 0.2 * weight.max()


def test_seeded_lime_gives_identical_maps_and_another_seed_other_samples() -> None:
    crops = _crops(1)
    params = LimeParams(num_samples=60, n_segments=20)

    def run(seed: int) -> np.ndarray:
        return explain_crops("lime", BoxMeanModel(), crops, mm_per_px=MM_PER_PX, device="cpu", params=params,
                             seed=seed)

    assert np.array_equal(run(3), run(3))
    assert not np.array_equal(run(3), run(4))


def test_lime_perturbations_made_on_the_device_match_the_package() -> None:
    image = np.repeat((_crops(1)[0, 0].numpy() / 255.0)[..., None], 3, axis=-1)
    segments = speckle_superpixels(image[..., 0], n_segments=20, compactness=0.3, sigma_px=2.0)
    fudged = image.copy()
    for s in np.unique(segments):
        fudged[segments == s] = image[segments == s].mean(0)
    classify = _LimeClassifier(BoxMeanModel().eval(), torch.device("cpu"))
    ours = _lime_explainer_class()(random_state=7).data_labels(image, fudged, segments, classify, 25, batch_size=8)
    stock = lime_image.LimeImageExplainer(random_state=7).data_labels(image, fudged, segments, classify, 25,
                                                                      batch_size=8)
    assert np.array_equal(ours[0], stock[0])
    np.testing.assert_allclose(ours[1], stock[1], rtol=0, atol=1e-6)


def test_gradcam_on_a_tiny_conv_net_highlights_the_box() -> None:
    model = TinyConvNet()
    assert gradcam_layer(model) == "stage.0"  # no known architecture: the last Conv2d
    box = _box_mask()
    for params in (GradCamParams(layer="stage"), None):
        maps = explain_crops("gradcam", model, _crops(2), mm_per_px=MM_PER_PX, device="cpu", params=params)
        assert maps.shape == (2, SIZE, SIZE) and maps.dtype == np.float32
        for m in maps:
            assert (m >= 0).all() and box.flat[m.argmax()]
            assert m[box].mean() > 5 * m[~box].mean()


def test_gradcam_works_under_inference_mode_and_rejects_an_unknown_layer() -> None:
    model, crops = TinyConvNet(), _crops(1)
    with torch.inference_mode():  # as a caller that evaluates and explains in one block would
        maps = explain_crops("gradcam", model, crops, mm_per_px=MM_PER_PX, device="cpu")
    assert maps.max() > 0
    with pytest.raises(ValueError, match="no layer 'head'"):
        explain_crops("gradcam", TinyConvNet(), _crops(1), mm_per_px=MM_PER_PX, device="cpu",
                      params=GradCamParams(layer="head"))


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_every_method_on_the_study_models(name: str) -> None:
    torch.manual_seed(0)
    model = build_model(name, num_classes=2, pretrained=False)
    assert gradcam_layer(model) == GRADCAM_LAYERS[name] and GRADCAM_LAYERS[name] in dict(model.named_modules())
    crops = _crops(2, size=64)
    small = {"occlusion": OcclusionParams(patch_mm=4.0, stride_mm=2.5), "lime": LimeParams(num_samples=16),
             "gradcam": None}
    for method in METHODS:
        maps = explain_crops(method, model, crops, mm_per_px=15.0 / 64, device="cpu", params=small[method])
        assert maps.shape == (2, 64, 64) and maps.dtype == np.float32 and np.isfinite(maps).all(), method
    assert not model.training


def test_params_round_trip_resolve_and_reject_bad_values() -> None:
    for method in METHODS:
        params = default_params(method)
        assert params_from_dict(method, params.to_dict()) == params
    assert default_params("lime").num_samples == 1000
    with pytest.raises(ValueError, match="Unknown occlusion parameter"):
        params_from_dict("occlusion", {"patch": 2})
    with pytest.raises(ValueError, match="must be > 0"):
        OcclusionParams(patch_mm=0)
    with pytest.raises(ValueError, match="Unknown explanation method"):
        default_params("shap")
    # The defaults on a 15 mm crop at 224 px: a 30 px patch every 7 px.
    record = resolved_params("occlusion", None, mm_per_px=15.0 / 224, size=224)
    assert (record["patch_px"], record["stride_px"]) == (30, 7) and record["patch_mm"] == 2.0
    assert resolved_params("gradcam", None, mm_per_px=0.1, size=64, model=TinyConvNet())["layer"] == "stage.0"


def test_explain_crops_rejects_bad_input() -> None:
    model = BoxMeanModel()
    with pytest.raises(ValueError, match="uint8"):
        explain_crops("occlusion", model, _crops(1).float(), mm_per_px=0.3, device="cpu")
    with pytest.raises(ValueError, match="mm_per_px"):
        explain_crops("occlusion", model, _crops(1), mm_per_px=0.0, device="cpu")
    with pytest.raises(TypeError, match="LimeParams"):
        explain_crops("lime", model, _crops(1), mm_per_px=0.3, device="cpu", params=OcclusionParams())
    empty = explain_crops("occlusion", model, _crops(0), mm_per_px=0.3, device="cpu")
    assert empty.shape == (0, SIZE, SIZE)
