"""Median-nerve crops: decode once into a compact uint8 tensor, keep it on the training device, and batch, augment
and normalise there (no per-batch host work beyond slicing a permutation)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from .augment import BatchAugment

__all__ = ["CropSample", "CropTensors", "GreyNormalizer", "ImageChanged", "crop_image", "load_crops", "batches"]


@dataclass(frozen=True)
class CropSample:
    """One labelled crop: the frame's PNG, the median-nerve box (x, y, w, h in px), its hand and frame ids."""

    image_path: str
    box: tuple[int, int, int, int]
    label: int  # 0 control, 1 CTS
    hand_id: int
    frame_id: int
    sha256: str = ""  # of the image file's bytes when known (a locked manifest's); a mismatch refuses the crop


@dataclass
class CropTensors:
    """Decoded crops: images uint8 (N, 1, S, S) and int64 labels, hand ids and frame ids (N,), on one device.

    `load_crops` gives them on the CPU; `to(device)` uploads them once (about 400 MB at study size, uint8 is 4x
    smaller than float) so training indexes its batches on the device.
    """

    images: torch.Tensor
    labels: torch.Tensor
    hand_ids: torch.Tensor
    frame_ids: torch.Tensor

    def __post_init__(self) -> None:
        n = self.images.shape[0]
        if self.images.dtype != torch.uint8 or self.images.dim() != 4 or self.images.shape[1] != 1:
            raise ValueError(f"images must be uint8 (N, 1, S, S), got {self.images.dtype} {tuple(self.images.shape)}.")
        for field in ("labels", "hand_ids", "frame_ids"):
            t = getattr(self, field)
            if t.shape != (n,):
                raise ValueError(f"{field} must have shape ({n},), got {tuple(t.shape)}.")

    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def size(self) -> int:
        """Side of the square crops in pixels."""
        return self.images.shape[-1]

    @property
    def device(self) -> torch.device:
        return self.images.device

    def to(self, device: torch.device | str) -> CropTensors:
        """The same crops on `device`; `self` when they are already there (no copy)."""
        device = torch.device(device)
        here = self.images.device
        # "cuda" without an index means whichever GPU the crops are on already.
        if here.type == device.type and device.index in (None, here.index):
            return self
        return CropTensors(*(t.to(device) for t in (self.images, self.labels, self.hand_ids, self.frame_ids)))

    def select(self, indices: Sequence[int] | np.ndarray | torch.Tensor) -> CropTensors:
        """The crops at `indices` (e.g. one cross-validation fold), as a new CropTensors."""
        idx = torch.as_tensor(indices, dtype=torch.long, device=self.device)
        return CropTensors(self.images[idx], self.labels[idx], self.hand_ids[idx], self.frame_ids[idx])


def crop_image(image: np.ndarray, box: tuple[int, int, int, int], size: int) -> np.ndarray:
    """Cut `box` (x, y, w, h) out of a 2-D uint8 image, zero-padding outside it, and resize to size x size."""
    x, y, w, h = (int(v) for v in box)
    if w <= 0 or h <= 0:
        raise ValueError(f"Crop box {box} has no area; boxes are (x, y, width, height) in pixels.")
    out = np.zeros((h, w), dtype=image.dtype)
    img_h, img_w = image.shape[:2]
    # Intersection of the box with the image; the rest of `out` stays zero (black, like the scan background).
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, img_w), min(y + h, img_h)
    if x1 > x0 and y1 > y0:
        out[y0 - y : y1 - y, x0 - x : x1 - x] = image[y0:y1, x0:x1]
    if (w, h) == (size, size):
        return out
    # INTER_AREA averages when shrinking (no aliasing); it degenerates to nearest when enlarging, so use linear.
    interp = cv2.INTER_AREA if w >= size and h >= size else cv2.INTER_LINEAR
    return cv2.resize(out, (size, size), interpolation=interp)


class ImageChanged(ValueError):
    """An image's bytes differ from the SHA-256 recorded when its dataset was frozen."""


def _load_one(sample: CropSample, size: int) -> np.ndarray:
    try:
        data = Path(sample.image_path).read_bytes()
    except OSError:
        data = b""
    if sample.sha256 and data and hashlib.sha256(data).hexdigest() != sample.sha256:
        raise ImageChanged(
            f"The image of frame {sample.frame_id} ({sample.image_path}) changed since its split was locked "
            f"(SHA-256 {hashlib.sha256(data).hexdigest()[:12]}…, locked {sample.sha256[:12]}…); make a new split "
            "version from the current frames."
        )
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE) if data else None
    if image is None:
        raise FileNotFoundError(
            f"Cannot read image {sample.image_path!r} (frame {sample.frame_id}); check that the file exists "
            "and is a PNG/JPEG OpenCV can decode."
        )
    return crop_image(image, sample.box, size)


def load_crops(samples: Sequence[CropSample], *, size: int, workers: int | None = None) -> CropTensors:
    """Decode, crop and resize every sample (grey) into a CPU CropTensors of size x size uint8 images."""
    if size < 1:
        raise ValueError(f"size must be >= 1, got {size}.")
    # Checked before decoding so a bad label fails in milliseconds, not after reading every PNG.
    for s in samples:
        if s.label not in (0, 1):
            raise ValueError(f"Label of frame {s.frame_id} is {s.label}; use 0 (control) or 1 (CTS).")
    n = len(samples)
    images = torch.empty((n, 1, size, size), dtype=torch.uint8)
    if n:
        # OpenCV releases the GIL while decoding and resizing, so threads scale without extra processes.
        workers = workers or min(8, os.cpu_count() or 1, n)
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for i, crop in enumerate(pool.map(lambda s: _load_one(s, size), samples)):
                images[i, 0] = torch.from_numpy(crop)
    return CropTensors(
        images=images,
        labels=torch.tensor([s.label for s in samples], dtype=torch.long),
        hand_ids=torch.tensor([s.hand_id for s in samples], dtype=torch.long),
        frame_ids=torch.tensor([s.frame_id for s in samples], dtype=torch.long),
    )


class GreyNormalizer:
    """uint8 grey crops -> the float (B, 3, S, S) input the networks expect; one path for training and explaining."""

    def __init__(self, mean: Sequence[float], std: Sequence[float], device: torch.device | str) -> None:
        device = torch.device(device)
        # Shaped for broadcasting a 1-channel batch to 3 channels: grey replicated as the ImageNet stem expects.
        self.mean = torch.tensor(mean, dtype=torch.float32, device=device).view(1, -1, 1, 1)
        self.inv_std = 1.0 / torch.tensor(std, dtype=torch.float32, device=device).view(1, -1, 1, 1)

    @staticmethod
    def to_unit(images: torch.Tensor) -> torch.Tensor:
        """uint8 (B, 1, S, S) -> float32 in [0, 1] on the images' device (augmentation and occlusion work here)."""
        return images.float().div_(255.0)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Float grey (B, 1, S, S) in [0, 1] -> normalised (B, 3, S, S)."""
        return (x - self.mean) * self.inv_std


def batches(
    crops: CropTensors,
    *,
    batch_size: int,
    shuffle: bool,
    generator: torch.Generator | None,
    device: torch.device | str,
    mean: Sequence[float],
    std: Sequence[float],
    augment: BatchAugment | None = None,
    channels_last: bool = False,
    drop_last: bool = False,
) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Yield (x float32 (B, 3, S, S) normalised on `device`, y int64 on `device`, CPU indices into `crops`).

    The crops are indexed on `device`: pass them there already (`crops.to(device)`, as `fit` does once per run)
    or they are uploaded here, once per call. The shuffle is drawn from `generator` on the CPU, so the batch order
    is the same on every device; the permutation is copied over once per call, and no batch crosses to the device.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
    on_device = crops.to(device)
    n = len(crops)
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    order_on_device = order.to(on_device.device)
    normalise = GreyNormalizer(mean, std, on_device.device)
    stop = n - n % batch_size if drop_last else n
    for start in range(0, stop, batch_size):
        idx = order_on_device[start : start + batch_size]
        # uint8 is gathered (4x fewer bytes than float); conversion, warp and normalisation follow on the device.
        x = GreyNormalizer.to_unit(on_device.images[idx])
        y = on_device.labels[idx]
        if augment is not None:
            x = augment(x)
        x = normalise(x)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        yield x, y, order[start : start + batch_size]
