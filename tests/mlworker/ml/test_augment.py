"""BatchAugment: identity when off, per-sample seeded affine warps, geometry of flip/rotation/translation, draws
on the generator's device within the protocol's ranges."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mlworker.ml import BatchAugment
from mlworker.ml.augment import DEGREES, FLIP_P, SCALE, SHEAR, TRANSLATE

NO_WARP = dict(degrees=0.0, scale=(1.0, 1.0), translate=(0.0, 0.0), shear=0.0)


def _batch(n: int = 8, c: int = 1, h: int = 32, w: int = 32, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, c, h, w, generator=torch.Generator().manual_seed(seed))


def test_disabled_and_eval_mode_are_identity() -> None:
    x = _batch()
    assert BatchAugment(enabled=False)(x) is x
    aug = BatchAugment(generator=torch.Generator().manual_seed(0)).eval()
    assert aug(x) is x


@pytest.mark.parametrize(("shape", "dtype"), [((4, 1, 32, 32), torch.float32), ((2, 3, 16, 24), torch.float64)])
def test_shape_and_dtype_are_kept(shape: tuple[int, ...], dtype: torch.dtype) -> None:
    x = torch.rand(shape, dtype=dtype)
    y = BatchAugment(generator=torch.Generator().manual_seed(1))(x)
    assert y.shape == x.shape and y.dtype == dtype and y.device == x.device
    assert not torch.equal(x, y)


def test_parameters_differ_across_the_batch() -> None:
    aug = BatchAugment(generator=torch.Generator().manual_seed(2))
    params = aug.sample_params(16)
    for key in ("angle", "scale", "tx", "ty", "shear"):
        assert params[key].unique().numel() == 16, key
    assert 0 < int(params["flip"].sum()) < 16
    # The same image repeated comes out differently for every sample.
    x = _batch(1).expand(6, -1, -1, -1).contiguous()
    y = BatchAugment(generator=torch.Generator().manual_seed(3))(x)
    for i in range(6):
        for j in range(i + 1, 6):
            assert not torch.allclose(y[i], y[j]), (i, j)


def test_fixed_seed_reproduces_and_other_seed_differs() -> None:
    x = _batch()
    a = BatchAugment(generator=torch.Generator().manual_seed(42))(x)
    b = BatchAugment(generator=torch.Generator().manual_seed(42))(x)
    c = BatchAugment(generator=torch.Generator().manual_seed(43))(x)
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)
    # A generator passed per call overrides the module's own.
    d = BatchAugment()(x, generator=torch.Generator().manual_seed(42))
    assert torch.equal(a, d)


def test_flip_only_flips_every_sample() -> None:
    x = _batch(4, h=20, w=28)
    y = BatchAugment(flip_p=1.0, **NO_WARP, generator=torch.Generator().manual_seed(0))(x)
    torch.testing.assert_close(y, x.flip(-1), atol=1e-5, rtol=0)
    z = BatchAugment(flip_p=0.0, **NO_WARP, generator=torch.Generator().manual_seed(0))(x)
    torch.testing.assert_close(z, x, atol=1e-5, rtol=0)


def test_rotation_by_90_degrees_matches_rot90() -> None:
    x = torch.arange(25.0).view(1, 1, 5, 5)
    params = BatchAugment(flip_p=0.0, **NO_WARP).sample_params(1)
    params["angle"] = torch.tensor([90.0], dtype=torch.float64)
    theta = BatchAugment.theta(params, 5, 5).float()
    grid = torch.nn.functional.affine_grid(theta, [1, 1, 5, 5], align_corners=False)
    y = torch.nn.functional.grid_sample(x, grid, align_corners=False)
    torch.testing.assert_close(y, torch.rot90(x, -1, (2, 3)), atol=1e-4, rtol=0)


def test_translation_moves_content_by_the_drawn_fraction() -> None:
    x = torch.zeros(1, 1, 1, 40)
    x[..., 10] = 1.0
    aug = BatchAugment(flip_p=0.0, degrees=0.0, scale=(1.0, 1.0), translate=(0.25, 0.0), shear=0.0,
                       generator=torch.Generator().manual_seed(4))
    shift = aug.sample_params(1, torch.Generator().manual_seed(4))["tx"].item() * 40
    y = aug(x)
    centre = (y[0, 0, 0] * torch.arange(40.0)).sum() / y.sum()
    assert centre.item() == pytest.approx(10 + shift, abs=1e-3)
    assert abs(shift) > 0.5


def test_rejects_uint8_input_and_bad_settings() -> None:
    with pytest.raises(TypeError, match="x.float"):
        BatchAugment()(torch.zeros(1, 1, 8, 8, dtype=torch.uint8))
    with pytest.raises(ValueError, match="flip_p"):
        BatchAugment(flip_p=1.5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_same_seed_gives_same_warp_on_cuda() -> None:
    x = _batch()
    cpu = BatchAugment(generator=torch.Generator().manual_seed(9))(x)
    gpu = BatchAugment(generator=torch.Generator().manual_seed(9))(x.cuda())
    torch.testing.assert_close(gpu.cpu(), cpu, atol=1e-4, rtol=0)
    # A CUDA generator draws on the GPU: reproducible from its seed, another stream than the CPU's.
    params = BatchAugment(generator=torch.Generator("cuda").manual_seed(9)).sample_params(8)
    assert {t.device.type for t in params.values()} == {"cuda"}
    a = BatchAugment(generator=torch.Generator("cuda").manual_seed(9))(x.cuda())
    b = BatchAugment(generator=torch.Generator("cuda").manual_seed(9))(x.cuda())
    assert torch.equal(a, b)


def test_the_protocol_ranges_are_the_defaults() -> None:
    aug = BatchAugment()
    assert (aug.flip_p, aug.degrees, aug.scale, aug.translate, aug.shear) == (FLIP_P, DEGREES, SCALE, TRANSLATE, SHEAR)
    assert (FLIP_P, DEGREES, SCALE, TRANSLATE, SHEAR) == (0.5, 10.0, (0.8, 1.2), (0.1, 0.1), 10.0)


def test_drawn_parameters_are_uniform_over_the_configured_ranges() -> None:
    n = 20_000
    params = BatchAugment(generator=torch.Generator().manual_seed(5)).sample_params(n)
    ranges = {"angle": (-DEGREES, DEGREES), "shear": (-SHEAR, SHEAR), "scale": SCALE,
              "tx": (-TRANSLATE[0], TRANSLATE[0]), "ty": (-TRANSLATE[1], TRANSLATE[1])}
    for key, (low, high) in ranges.items():
        values = np.sort(params[key].numpy())
        assert low <= values[0] and values[-1] <= high, key
        # Reaches both ends of the range, and its empirical CDF stays within the Kolmogorov-Smirnov band of
        # alpha = 0.001 per parameter (0.5% for the five together).
        assert values[0] - low < 0.001 * (high - low) and high - values[-1] < 0.001 * (high - low), key
        cdf = (values - low) / (high - low)
        ks = max(np.max(np.arange(1, n + 1) / n - cdf), np.max(cdf - np.arange(n) / n))
        assert ks < 1.95 / math.sqrt(n), (key, ks)
    flips = params["flip"].double().mean().item()
    assert abs(flips - FLIP_P) < 4 * math.sqrt(FLIP_P * (1 - FLIP_P) / n)
    # Independent draws: no two parameters move together.
    stacked = np.corrcoef(np.stack([params[k].double().numpy() for k in (*ranges, "flip")]))
    assert np.abs(stacked - np.eye(len(ranges) + 1)).max() < 0.05


def test_an_identity_draw_returns_the_input() -> None:
    x = _batch(3, c=2, h=12, w=20)
    identity = {"flip": torch.zeros(3, dtype=torch.bool), **{k: torch.zeros(3, dtype=torch.float64)
                                                            for k in ("angle", "tx", "ty", "shear")},
                "scale": torch.ones(3, dtype=torch.float64)}
    torch.testing.assert_close(BatchAugment().apply(x, identity), x, atol=1e-6, rtol=0)


def test_theta_is_the_inverse_of_the_forward_warp() -> None:
    """The closed-form matrices against the forward map inverted numerically, on a non-square image."""
    height, width = 24, 40
    params = BatchAugment(degrees=40.0, shear=30.0, scale=(0.5, 1.5), translate=(0.3, 0.2),
                          generator=torch.Generator().manual_seed(6)).sample_params(32)
    rot, shear = torch.deg2rad(params["angle"]), torch.tan(torch.deg2rad(params["shear"]))
    eye = torch.eye(2, dtype=torch.float64).repeat(32, 1, 1)
    rotation = torch.stack([torch.stack([rot.cos(), -rot.sin()], -1), torch.stack([rot.sin(), rot.cos()], -1)], -2)
    shearing, flipping = eye.clone(), eye.clone()
    shearing[:, 0, 1] = shear
    flipping[:, 0, 0] = torch.where(params["flip"], -1.0, 1.0)
    # Forward map in pixels about the centre, as a 3x3 homogeneous matrix; then to normalised coordinates.
    forward = torch.zeros(32, 3, 3, dtype=torch.float64)
    forward[:, :2, :2] = rotation @ shearing @ (params["scale"].view(-1, 1, 1) * flipping)
    forward[:, 0, 2], forward[:, 1, 2], forward[:, 2, 2] = params["tx"] * width, params["ty"] * height, 1.0
    to_norm = torch.diag(torch.tensor([2.0 / width, 2.0 / height, 1.0], dtype=torch.float64))
    expected = (to_norm @ torch.linalg.inv(forward) @ torch.linalg.inv(to_norm))[:, :2]
    torch.testing.assert_close(BatchAugment.theta(params, height, width), expected, atol=1e-12, rtol=0)


def test_parameters_are_drawn_on_the_generators_or_the_batchs_device() -> None:
    aug = BatchAugment()
    on_meta = aug.sample_params(4, device="meta")  # no generator: the global RNG of the batch's device
    assert {t.device.type for t in on_meta.values()} == {"meta"}
    cpu = aug.sample_params(4, torch.Generator().manual_seed(0), device="meta")  # a generator's device wins
    assert {t.device.type for t in cpu.values()} == {"cpu"}
