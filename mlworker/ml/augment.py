"""Batched, seeded training augmentation: flip, rotate, scale, translate and shear as one affine warp per sample."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["BatchAugment"]


class BatchAugment(nn.Module):
    """Random flip/rotation/scale/translation/shear of a float batch (B, C, H, W) on its own device.

    Parameters are drawn per sample on the CPU from `generator` (so a seed reproduces a run on any device),
    composed into one 2x3 matrix per sample and applied with a single `affine_grid` + `grid_sample`.
    Areas uncovered by the warp are filled with `fill` (0 = black, the ultrasound background).
    """

    def __init__(
        self,
        *,
        flip_p: float = 0.5,
        degrees: float = 10.0,
        scale: tuple[float, float] = (0.8, 1.2),
        translate: tuple[float, float] = (0.1, 0.1),
        shear: float = 10.0,
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
        if generator is not None and generator.device.type != "cpu":
            raise ValueError("BatchAugment draws its parameters on the CPU; pass a CPU torch.Generator.")
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

    def sample_params(self, batch: int, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """Draw per-sample parameters on the CPU: flip (bool), angle/shear (deg), scale, tx/ty (fraction of size)."""
        g = generator if generator is not None else self.generator

        def uniform(low: float, high: float) -> torch.Tensor:
            return low + (high - low) * torch.rand(batch, generator=g, dtype=torch.float64)

        # Always draw every parameter so the generator advances the same way whatever the ranges are.
        return {
            "flip": torch.rand(batch, generator=g, dtype=torch.float64) < self.flip_p,
            "angle": uniform(-self.degrees, self.degrees),
            "scale": uniform(*self.scale),
            "tx": uniform(-self.translate[0], self.translate[0]),
            "ty": uniform(-self.translate[1], self.translate[1]),
            "shear": uniform(-self.shear, self.shear),
        }

    @staticmethod
    def theta(params: dict[str, torch.Tensor], height: int, width: int) -> torch.Tensor:
        """(B, 2, 3) `affine_grid` matrices (output -> input, normalised coords) for the given parameters."""
        batch = params["angle"].shape[0]
        rot = torch.deg2rad(params["angle"])
        cos, sin = torch.cos(rot), torch.sin(rot)
        eye = torch.eye(2, dtype=torch.float64).expand(batch, 2, 2)
        rotation = torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2)
        shear = eye.clone()
        shear[:, 0, 1] = torch.tan(torch.deg2rad(params["shear"]))
        flip = eye.clone()
        flip[:, 0, 0] = torch.where(params["flip"], -1.0, 1.0).to(torch.float64)
        # Forward map in centred pixel coordinates: flip first, then scale, shear, rotate, translate.
        forward = rotation @ shear @ (params["scale"].view(-1, 1, 1) * flip)
        # Pixel <-> normalised coordinates (align_corners=False) so non-square images warp without distortion.
        half = torch.diag(torch.tensor([width / 2.0, height / 2.0], dtype=torch.float64))
        half_inv = torch.diag(torch.tensor([2.0 / width, 2.0 / height], dtype=torch.float64))
        inverse = torch.linalg.inv(forward)
        linear = half_inv @ inverse @ half
        shift_px = torch.stack([params["tx"] * width, params["ty"] * height], -1).unsqueeze(-1)
        offset = -(half_inv @ inverse @ shift_px)
        return torch.cat([linear, offset], dim=-1)

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Warp each sample of float `x` with its own random affine; identity when disabled or in eval mode."""
        if not self.enabled or not self.training:
            return x
        if not x.is_floating_point() or x.dim() != 4:
            raise TypeError(f"BatchAugment needs a float (B, C, H, W) batch, got {x.dtype} {tuple(x.shape)}; "
                            "convert uint8 images with x.float() / 255 first.")
        batch, _, height, width = x.shape
        params = self.sample_params(batch, generator)
        theta = self.theta(params, height, width).to(x.dtype)
        if x.is_cuda:
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
