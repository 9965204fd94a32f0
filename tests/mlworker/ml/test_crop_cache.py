"""The crop cache: decoded once per manifest and size, shared by concurrent processes, never half-written."""

import multiprocessing
from pathlib import Path

import pytest
import torch

from mlworker.ml.crop_cache import cache_file, cached_crop_images


def _images(n: int) -> torch.Tensor:
    return torch.arange(n * 16, dtype=torch.int64).remainder(256).to(torch.uint8).view(n, 1, 4, 4)


def test_decoded_once_then_read_back(tmp_path: Path):
    path = cache_file(tmp_path, manifest_hash="abc123", size=4)
    calls = []

    def decode():
        calls.append(1)
        return _images(3)

    first = cached_crop_images(path, [7, 8, 9], decode)
    second = cached_crop_images(path, [7, 8, 9], decode)
    assert torch.equal(first, second) and len(calls) == 1
    # Other frames under the same name (should never happen with a hash) are decoded again, not mis-read.
    assert torch.equal(cached_crop_images(path, [7, 8], lambda: _images(2)), _images(2))
    assert [p.name for p in tmp_path.iterdir() if ".tmp-" in p.name] == []


def test_the_cache_name_carries_the_manifest_and_the_size(tmp_path: Path):
    assert cache_file(tmp_path, manifest_hash="abc", size=224) != cache_file(tmp_path, manifest_hash="abc", size=112)
    assert cache_file(tmp_path, manifest_hash="abc", size=224) != cache_file(tmp_path, manifest_hash="abd", size=224)
    with pytest.raises(ValueError):
        cache_file(tmp_path, manifest_hash="../x", size=224)


def test_a_damaged_file_is_decoded_again(tmp_path: Path):
    path = cache_file(tmp_path, manifest_hash="abc", size=4)
    path.write_bytes(b"not a torch file")
    assert torch.equal(cached_crop_images(path, [1, 2], lambda: _images(2)), _images(2))
    assert torch.equal(cached_crop_images(path, [1, 2], lambda: pytest.fail("decoded twice")), _images(2))


def _worker(path: str, counter: str) -> None:
    def decode():
        with open(counter, "a") as handle:
            handle.write("x")
        return _images(50)

    images = cached_crop_images(Path(path), list(range(50)), decode)
    assert torch.equal(images, _images(50))


def test_concurrent_processes_decode_once(tmp_path: Path):
    path, counter = cache_file(tmp_path, manifest_hash="abc", size=4), tmp_path / "decodes"
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=_worker, args=(str(path), str(counter))) for _ in range(4)]
    for p in processes:
        p.start()
    for p in processes:
        p.join(60)
    assert [p.exitcode for p in processes] == [0, 0, 0, 0]
    assert counter.read_text() == "x"
