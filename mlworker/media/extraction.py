"""Pick evenly spaced frames from a clip and encode them as lossless PNG, streaming: a few frames in memory."""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from mlworker.media.png import encode_png
from mlworker.media.readers import ClipReader
from mlworker.threads import available_cpus

__all__ = ["ExtractedFrame", "default_encoders", "evenly_spaced_indices", "extract_frames"]

# Frames decoded but not yet handed on, per encoder thread: enough to keep every encoder busy while the
# decoder runs ahead, few enough that memory holds a handful of frames, never a clip.
PENDING_PER_ENCODER = 2


@dataclass(frozen=True)
class ExtractedFrame:
    """One extracted frame: its index in the clip, its time, its size, its PNG bytes and their SHA-256."""

    index: int
    timestamp_s: float | None
    width: int
    height: int
    channels: int
    png: bytes
    sha256: str


def evenly_spaced_indices(total: int, n: int) -> list[int]:
    """n frame indices evenly spaced over [0, total-1], both ends included; every frame when total <= n."""
    if n < 1:
        raise ValueError(f"the number of frames to extract must be at least 1, got {n}")
    if total < 0:
        raise ValueError(f"the clip's frame count cannot be negative, got {total}")
    if total <= n:
        return list(range(total))
    if n == 1:
        return [0]
    span = total - 1
    # Integer round-half-up of i * span / (n - 1): exact and identical on every platform, unlike floats.
    return [(2 * i * span + (n - 1)) // (2 * (n - 1)) for i in range(n)]


def default_encoders() -> int:
    """Encoder threads for one extraction: the cores this process may use but one, from one to four.

    Decoding every frame up to the last one wanted is the critical path, so it keeps a core; encoding a
    frame (about 1.5 ms of CPU at 800 x 600, mlworker.media.png) costs less than decoding the frames up to
    the next one wanted, so a few encoders keep up, and more than the spare cores would only slow the decoder.
    """
    return max(1, min(4, available_cpus() - 1))


def _encode(frame: np.ndarray, index: int, timestamp_s: float | None) -> ExtractedFrame:
    """PNG-encode and hash one frame on an encoder thread (ISA-L's deflate and hashlib release the GIL)."""
    encoded = encode_png(frame)
    height, width = frame.shape[:2]
    return ExtractedFrame(
        index=index,
        timestamp_s=timestamp_s,
        width=width,
        height=height,
        channels=1 if frame.ndim == 2 else frame.shape[2],
        png=encoded,
        sha256=hashlib.sha256(encoded).hexdigest(),
    )


def _encode_and_store(
    frame: np.ndarray, index: int, timestamp_s: float | None, store: Callable[[ExtractedFrame], None] | None
) -> ExtractedFrame:
    extracted = _encode(frame, index, timestamp_s)
    if store is not None:
        store(extracted)
    return extracted


def extract_frames(
    reader: ClipReader,
    n_frames: int,
    *,
    progress: Callable[[int, int], None] | None = None,
    encoders: int | None = None,
    store: Callable[[ExtractedFrame], None] | None = None,
) -> Iterator[ExtractedFrame]:
    """Yield n_frames evenly spaced frames as PNG (single-channel for grey clips), calling progress(done, total).

    Frames are decoded on the calling thread and PNG-encoded on `encoders` threads (default_encoders()),
    then handed to `store` on that thread (to write them out while the next frames decode), and leave in
    frame order: at most a few frames per encoder are held, so memory does not grow with the clip, and
    the output is the same whatever the thread count.
    """
    info = reader.info
    indices = evenly_spaced_indices(info.frame_count, n_frames)
    total = len(indices)
    workers = encoders or default_encoders()
    done = 0
    pending: deque[Future[ExtractedFrame]] = deque()
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="png") as pool:
        for frame, index in reader.read(indices):
            pending.append(pool.submit(_encode_and_store, frame, index, info.timestamp_s(index), store))
            del frame  # the encoder holds it now; memory stays bounded by the pending queue
            while pending and (pending[0].done() or len(pending) > PENDING_PER_ENCODER * workers):
                done += 1
                extracted = pending.popleft().result()
                if progress is not None:
                    progress(done, total)
                yield extracted
        while pending:
            done += 1
            extracted = pending.popleft().result()
            if progress is not None:
                progress(done, total)
            yield extracted
    if done != total:
        # Readers raise on a short stream; this guards a reader that silently stops early.
        raise RuntimeError(f"the reader returned {done} of {total} requested frames")
