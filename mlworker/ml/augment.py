"""Batched, seeded training augmentation: flip, rotate, scale, translate and shear as one affine warp per sample.

The ranges below are the protocol's augmentation and its one home: `BatchAugment`'s defaults, the tests and the
benchmarks read them from here.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .constants import DEGREES, FLIP_P, SCALE, SHEAR, TRANSLATE

__all__ = ["BatchAugment", "DEGREES", "FLIP_P", "SCALE", "SHEAR", "TRANSLATE"]

# The ranges (FLIP_P, DEGREES, SHEAR, SCALE, TRANSLATE) live in the torch-free constants module, which the
# report's methods text reads too.

# Drawn in double precision whatever the images' dtype: a batch's warp does not depend on bf16/fp32 choices.
_PARAM_DTYPE = torch.float64


class BatchAugment(nn.Module):
    """Random flip/rotation/scale/translation/shear of a float batch (B, C, H, W) on its own device.

    Parameters are drawn per sample from `generator` on the generator's device (a CUDA generator draws on the
    GPU, so no host round trip per batch; a CPU generator reproduces the same draws on any device), composed
    into one 2x3 matrix per sample and applied with a single `affine_grid` + `grid_sample`.
    Areas uncovered by the warp are filled with `fill` (0 = black, the ultrasound background).
    """

    def __init__(
        self,
        *,
        flip_p: float = FLIP_P,
        degrees: float = DEGREES,
        scale: tuple[float, float] = SCALE,
        translate: tuple[float, float] = TRANSLATE,
        shear: float = SHEAR,
        fill: float = 0.0,
        enabled: bool = True,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        if not 0.0 <= flip_p <= 1.0:
            raise ValueError(f"flip_p must be in [0, 1], got {flip_p}.")
        if not (0.0 < scale[0] <= scale[1]):
            raise ValueError(f"scale must be (low, high) with 0 < low <= high, got {scale}.")
        if degrees < 0 or shear < 0 or min(translate) < 0:
            raise ValueError("degrees, shear and translate are half-ranges and must be >= 0.")
        if shear >= 90:
            raise ValueError(f"shear must be below 90 degrees, got {shear}.")
        self.flip_p = flip_p
        self.degrees = degrees
        self.scale = scale
        self.translate = translate
        self.shear = shear
        self.fill = fill
        self.enabled = enabled
        self.generator = generator

    def extra_repr(self) -> str:
        return (
            f"flip_p={self.flip_p}, degrees={self.degrees}, scale={self.scale}, translate={self.translate}, "
            f"shear={self.shear}, enabled={self.enabled}"
        )

    def sample_params(
        self, batch: int, generator: torch.Generator | None = None, *, device: torch.device | str | None = None,
    ) -> dict[str, torch.Tensor]:
        """Per-sample parameters: flip (bool), angle/shear (deg), scale, tx/ty (fraction of the size).

        Drawn on the generator's device; without a generator, from the global RNG of `device` (CPU if None).
        """
        g = generator if generator is not None else self.generator
        where = g.device if g is not None else torch.device(device or "cpu")

        def uniform(low: float, high: float) -> torch.Tensor:
            return low + (high - low) * torch.rand(batch, generator=g, device=where, dtype=_PARAM_DTYPE)

        # Always draw every parameter so the generator advances the same way whatever the ranges are.
        return {
            "flip": torch.rand(batch, generator=g, device=where, dtype=_PARAM_DTYPE) < self.flip_p,
            "angle": uniform(-self.degrees, self.degrees),
            "scale": uniform(*self.scale),
            "tx": uniform(-self.translate[0], self.translate[0]),
            "ty": uniform(-self.translate[1], self.translate[1]),
            "shear": uniform(-self.shear, self.shear),
        }

    @staticmethod
    def theta(params: dict[str, torch.Tensor], height: int, width: int) -> torch.Tensor:
        """(B, 2, 3) `affine_grid` matrices (output -> input, normalised coords) on the parameters' device.

        The forward map in centred pixel coordinates is: flip, then scale, shear, rotate, translate, i.e.
        p' = R Sh (s F) p + t. `affine_grid` wants its inverse, written out here (no batched matrix inverse,
        which would cost a solver launch and a sync on a GPU): (s F)^-1 Sh^-1 R^T (p' - t).
        """
        rot = torch.deg2rad(params["angle"])
        cos, sin = torch.cos(rot), torch.sin(rot)
        tan = torch.tan(torch.deg2rad(params["shear"]))
        flip = 1.0 - 2.0 * params["flip"].to(cos.dtype)
        inv_scale = 1.0 / params["scale"]
        # Rows of F^-1 Sh^-1 R^T / s, with Sh^-1 = [[1, -tan], [0, 1]] and R^T = [[cos, sin], [-sin, cos]].
        a00 = flip * (cos + tan * sin) * inv_scale
        a01 = flip * (sin - tan * cos) * inv_scale
        a10 = -sin * inv_scale
        a11 = cos * inv_scale
        # Pixel <-> normalised coordinates (align_corners=False): x_n = 2 x / W, so non-square images warp
        # without distortion; the shift t is (tx W, ty H) pixels, i.e. (2 tx, 2 ty) normalised.
        aspect = height / width
        tx, ty = 2.0 * params["tx"], 2.0 * params["ty"]
        linear = torch.stack([torch.stack([a00, a01 * aspect], -1), torch.stack([a10 / aspect, a11], -1)], -2)
        offset = -(linear @ torch.stack([tx, ty], -1).unsqueeze(-1))
        return torch.cat([linear, offset], dim=-1)

    def apply(self, x: torch.Tensor, params: dict[str, torch.Tensor]) -> torch.Tensor:
        """Warp each sample of float `x` (B, C, H, W) by its own parameters (from `sample_params`)."""
        if not x.is_floating_point() or x.dim() != 4:
            raise TypeError(f"BatchAugment needs a float (B, C, H, W) batch, got {x.dtype} {tuple(x.shape)}; "
                            "convert uint8 images with x.float() / 255 first.")
        _, _, height, width = x.shape
        theta = self.theta(params, height, width).to(x.dtype)
        if theta.device != x.device:
            if x.is_cuda and not theta.is_cuda:
                # A pageable-memory copy may block the host; pinned lets it queue behind the running kernels.
                theta = theta.pin_memory()
            theta = theta.to(x.device, non_blocking=True)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        if self.fill == 0.0:
            return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        # Non-zero fill: warp a ones-mask alongside to know which output pixels came from outside the image.
        warped = F.grid_sample(
            torch.cat([x, torch.ones_like(x[:, :1])], 1), grid, mode="bilinear", padding_mode="zeros",
            align_corners=False,
        )
        mask = warped[:, -1:]
        return warped[:, :-1] + (1.0 - mask) * self.fill

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Warp each sample of float `x` with its own random affine; identity when disabled or in eval mode."""
        if not self.enabled or not self.training:
            return x
        if not x.is_floating_point() or x.dim() != 4:
            raise TypeError(f"BatchAugment needs a float (B, C, H, W) batch, got {x.dtype} {tuple(x.shape)}; "
                            "convert uint8 images with x.float() / 255 first.")
        return self.apply(x, self.sample_params(x.shape[0], generator, device=x.device))
