"""Crop loading from PNGs (padding, resizing) and device-side batching/normalisation."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from mlworker.ml import IMAGENET_MEAN, IMAGENET_STD, BatchAugment, CropSample, CropTensors, batches, load_crops


@pytest.fixture
def frame(tmp_path: Path) -> tuple[str, np.ndarray]:
    """A 40x60 grey PNG whose pixel values encode their position."""
    yy, xx = np.mgrid[0:40, 0:60]
    image = ((yy * 3 + xx * 2) % 200 + 20).astype(np.uint8)
    path = tmp_path / "frame.png"
    assert cv2.imwrite(str(path), image)
    return str(path), image


def test_crop_inside_the_image_is_exact(frame: tuple[str, np.ndarray]) -> None:
    path, image = frame
    crops = load_crops([CropSample(path, (5, 7, 16, 16), 1, hand_id=3, frame_id=9)], size=16)
    assert crops.images.dtype == torch.uint8 and crops.images.shape == (1, 1, 16, 16)
    np.testing.assert_array_equal(crops.images[0, 0].numpy(), image[7:23, 5:21])
    assert crops.labels.tolist() == [1] and crops.hand_ids.tolist() == [3] and crops.frame_ids.tolist() == [9]
    assert crops.labels.dtype == torch.long and len(crops) == 1 and crops.size == 16


def test_box_reaching_outside_is_zero_padded(frame: tuple[str, np.ndarray]) -> None:
    path, image = frame
    crops = load_crops(
        [
            CropSample(path, (-4, -6, 12, 12), 0, hand_id=1, frame_id=1),  # top-left corner
            CropSample(path, (54, 34, 12, 12), 0, hand_id=1, frame_id=2),  # bottom-right corner
            CropSample(path, (100, 100, 12, 12), 0, hand_id=1, frame_id=3),  # entirely outside
        ],
        size=12,
    )
    top_left, bottom_right, outside = (c[0].numpy() for c in crops.images)
    assert (top_left[:6, :] == 0).all() and (top_left[:, :4] == 0).all()
    np.testing.assert_array_equal(top_left[6:, 4:], image[0:6, 0:8])
    np.testing.assert_array_equal(bottom_right[:6, :6], image[34:40, 54:60])
    assert (bottom_right[6:, :] == 0).all() and (bottom_right[:, 6:] == 0).all()
    assert (outside == 0).all()


def test_resize_uses_area_when_shrinking_and_linear_when_enlarging(frame: tuple[str, np.ndarray]) -> None:
    path, image = frame
    crops = load_crops(
        [CropSample(path, (0, 0, 32, 32), 0, 1, 1), CropSample(path, (10, 10, 8, 8), 1, 1, 2)], size=16
    )
    shrunk, enlarged = (c[0].numpy() for c in crops.images)
    np.testing.assert_array_equal(shrunk, cv2.resize(image[0:32, 0:32], (16, 16), interpolation=cv2.INTER_AREA))
    np.testing.assert_array_equal(
        enlarged, cv2.resize(image[10:18, 10:18], (16, 16), interpolation=cv2.INTER_LINEAR)
    )


def test_many_files_keep_their_order(tmp_path: Path) -> None:
    samples = []
    for i in range(12):
        path = tmp_path / f"f{i}.png"
        cv2.imwrite(str(path), np.full((20, 20), 10 * i, dtype=np.uint8))
        samples.append(CropSample(str(path), (2, 2, 10, 10), i % 2, hand_id=i // 4, frame_id=i))
    crops = load_crops(samples, size=8, workers=4)
    assert [int(c.max()) for c in crops.images] == [10 * i for i in range(12)]
    assert crops.frame_ids.tolist() == list(range(12))
    assert crops.select([3, 5]).frame_ids.tolist() == [3, 5]


def test_loading_errors_say_what_to_fix(tmp_path: Path, frame: tuple[str, np.ndarray]) -> None:
    path, _ = frame
    with pytest.raises(FileNotFoundError, match="missing.png"):
        load_crops([CropSample(str(tmp_path / "missing.png"), (0, 0, 4, 4), 0, 1, 1)], size=4)
    with pytest.raises(ValueError, match="0 \\(control\\) or 1 \\(CTS\\)"):
        load_crops([CropSample(path, (0, 0, 4, 4), 2, 1, 1)], size=4)
    with pytest.raises(ValueError, match="no area"):
        load_crops([CropSample(path, (0, 0, 0, 4), 0, 1, 1)], size=4)


def _crops(n: int = 10, size: int = 8) -> CropTensors:
    images = torch.arange(n, dtype=torch.uint8).view(n, 1, 1, 1).expand(n, 1, size, size) * 20
    return CropTensors(images.contiguous(), torch.arange(n) % 2, torch.arange(n), torch.arange(n))


def test_batches_normalise_grey_to_three_channels() -> None:
    crops = _crops()
    out = list(batches(crops, batch_size=4, shuffle=False, generator=None, device="cpu",
                       mean=IMAGENET_MEAN, std=IMAGENET_STD))
    assert [len(idx) for _, _, idx in out] == [4, 4, 2]
    x, y, idx = out[0]
    assert x.shape == (4, 3, 8, 8) and x.dtype == torch.float32 and y.dtype == torch.long
    for i, sample in enumerate(idx.tolist()):
        for c in range(3):
            expected = (sample * 20 / 255 - IMAGENET_MEAN[c]) / IMAGENET_STD[c]
            torch.testing.assert_close(x[i, c], torch.full((8, 8), expected), atol=1e-5, rtol=0)
    assert torch.equal(y, crops.labels[idx])


def test_shuffle_is_seeded_and_covers_every_crop_once() -> None:
    crops = _crops(10)

    def order(seed: int) -> list[int]:
        return torch.cat([idx for _, _, idx in batches(
            crops, batch_size=3, shuffle=True, generator=torch.Generator().manual_seed(seed), device="cpu",
            mean=IMAGENET_MEAN, std=IMAGENET_STD)]).tolist()

    assert sorted(order(0)) == list(range(10))
    assert order(0) == order(0)
    assert order(0) != order(1)
    kept = [len(i) for _, _, i in batches(crops, batch_size=3, shuffle=False, generator=None, device="cpu",
                                          mean=IMAGENET_MEAN, std=IMAGENET_STD, drop_last=True)]
    assert kept == [3, 3, 3]


def test_batches_apply_augmentation_and_channels_last() -> None:
    crops = _crops(4, size=16)
    crops.images[:, :, :, :8] = 200  # left half bright, so a flip is visible
    aug = BatchAugment(flip_p=1.0, degrees=0.0, scale=(1.0, 1.0), translate=(0.0, 0.0), shear=0.0,
                       generator=torch.Generator().manual_seed(0))
    (x, _, _), = batches(crops, batch_size=4, shuffle=False, generator=None, device="cpu", mean=(0.0,) * 3,
                         std=(1.0,) * 3, augment=aug, channels_last=True)
    assert x.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(x[:, :, :, 8:], torch.full((4, 3, 16, 8), 200 / 255), atol=1e-5, rtol=0)


def test_crops_move_to_a_device_once() -> None:
    crops = _crops(6)
    assert crops.to("cpu") is crops and crops.to(torch.device("cpu")) is crops and crops.device.type == "cpu"
    on_meta = crops.to("meta")  # another device: every field is copied there
    assert on_meta is not crops and len(on_meta) == 6
    assert {t.device.type for t in (on_meta.images, on_meta.labels, on_meta.hand_ids, on_meta.frame_ids)} == {"meta"}
    assert on_meta.to("meta") is on_meta
    assert on_meta.select([1, 2]).device.type == "meta"


def test_same_seeds_give_the_same_augmented_batches_on_the_device() -> None:
    crops = _crops(12, size=16)
    crops.images[:, :, :, :5] = 250  # an asymmetric pattern so every warp shows

    def epoch(shuffle_seed: int, augment_seed: int) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        aug = BatchAugment(generator=torch.Generator(device="cpu").manual_seed(augment_seed))
        return list(batches(crops, batch_size=5, shuffle=True, generator=torch.Generator().manual_seed(shuffle_seed),
                            device="cpu", mean=IMAGENET_MEAN, std=IMAGENET_STD, augment=aug))

    first, again = epoch(0, 1), epoch(0, 1)
    assert len(first) == 3
    for (x, y, idx), (x2, y2, idx2) in zip(first, again, strict=True):
        assert torch.equal(x, x2) and torch.equal(y, y2) and torch.equal(idx, idx2)
        assert y.device == x.device and idx.device.type == "cpu" and torch.equal(y, crops.labels[idx])
    other_warp = epoch(0, 2)
    assert [i.tolist() for _, _, i in other_warp] == [i.tolist() for _, _, i in first]  # the order is the shuffle's
    assert not torch.allclose(other_warp[0][0], first[0][0])
