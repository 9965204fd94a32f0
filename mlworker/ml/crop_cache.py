"""Decoded crops of a locked manifest, kept on disk: the three runs of an experiment and every rerun decode once.

A cache file holds the uint8 crops of one manifest at one crop size, with the frame ids they belong to. The
manifest pins each image's SHA-256 and box, so (manifest hash, size) names the pixels exactly; labels are not
stored (a permuted-label control relabels the same crops). Writers take a lock and rename a finished file into
place, so concurrent runs decode once and a reader never sees half a file.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import torch

__all__ = ["cache_file", "cached_crop_images"]

_logger = logging.getLogger(__name__)
# Bumped when the file layout or the cropping changes, so old files are decoded again instead of mis-read.
CACHE_FORMAT = 1


def cache_file(cache_dir: Path, *, manifest_hash: str, size: int) -> Path:
    """Where the crops of the manifest with this hash, at `size` px, are kept."""
    if not manifest_hash or not manifest_hash.isalnum():
        raise ValueError(f"A manifest hash names the cache file; got {manifest_hash!r}.")
    return Path(cache_dir) / f"crops_v{CACHE_FORMAT}_{manifest_hash}_{int(size)}px.pt"


def _read(path: Path, frame_ids: torch.Tensor) -> torch.Tensor | None:
    try:
        stored = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        return None
    except Exception as error:  # a file from elsewhere or damaged: decode again and replace it
        _logger.warning("Ignoring unreadable crop cache %s: %s", path, error)
        return None
    if not torch.equal(stored.get("frame_ids", torch.empty(0)), frame_ids):
        return None
    return stored["images"]


def _write_atomic(payload: dict, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with open(path.with_name(path.name + ".lock"), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file closes, also if the process dies
        yield


def cached_crop_images(path: Path, frame_ids: Sequence[int], decode: Callable[[], torch.Tensor]) -> torch.Tensor:
    """uint8 crops (N, 1, S, S) of `frame_ids`, in that order: read from `path` when it holds exactly these
    frames, else `decode()`d by one process and stored there for the others."""
    wanted = torch.tensor(list(frame_ids), dtype=torch.long)
    images = _read(path, wanted)
    if images is not None:
        return images
    path.parent.mkdir(parents=True, exist_ok=True)
    with _locked(path):
        images = _read(path, wanted)  # another run may have decoded them while this one waited
        if images is None:
            images = decode()
            if images.shape[0] != wanted.numel() or images.dtype != torch.uint8:
                raise ValueError(f"decode() gave {tuple(images.shape)} {images.dtype}; expected "
                                 f"{wanted.numel()} uint8 crops.")
            _write_atomic({"frame_ids": wanted, "images": images.contiguous()}, path)
    return images
