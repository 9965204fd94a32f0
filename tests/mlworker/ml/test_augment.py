"""BatchAugment: identity when off, per-sample seeded affine warps, geometry of flip/rotation/translation."""

from __future__ import annotations

import pytest
import torch

from mlworker.ml import BatchAugment

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
    assert params["angle"].abs().max() <= 10 and params["shear"].abs().max() <= 10
    assert params["scale"].min() >= 0.8 and params["scale"].max() <= 1.2
    assert params["tx"].abs().max() <= 0.1 and params["ty"].abs().max() <= 0.1
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
