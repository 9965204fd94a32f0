"""Pick evenly spaced frames from a clip and encode them as lossless PNG, streaming: a few frames in memory."""

from __future__ import annotations

import contextlib
import hashlib
import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from mlworker.media.png import encode_png
from mlworker.media.readers import ClipReader
from mlworker.threads import available_cpus

__all__ = ["ExtractedFrame", "default_encoders", "default_parts", "evenly_spaced_indices", "extract_frames"]

# Frames decoded but not yet handed on, per encoder thread: enough to keep every encoder busy while the
# decoder runs ahead, few enough that memory holds a handful of frames, never a clip.
PENDING_PER_ENCODER = 2
# PNGs of later parts waiting for their turn (extraction in parts): far more than a study clip's 100 frames
# take (about 30 MB), a bound for clips of 1,000 large colour frames; past it the later parts wait.
PARTS_WAITING_BYTES = 256 * 2**20


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


def default_parts() -> int:
    """Parts of a clip decoded at once where its stream allows (ClipReader.split): one per core, up to eight."""
    return max(1, min(8, available_cpus()))


def extract_frames(
    reader: ClipReader,
    n_frames: int,
    *,
    progress: Callable[[int, int], None] | None = None,
    encoders: int | None = None,
    parts: int | None = None,
    store: Callable[[ExtractedFrame], None] | None = None,
) -> Iterator[ExtractedFrame]:
    """Yield n_frames evenly spaced frames as PNG (single-channel for grey clips), calling progress(done, total).

    Where the stream can be decoded from several keyframes at once (ClipReader.split), each of `parts`
    threads (default_parts()) decodes, encodes and stores one stretch of the clip with a single-threaded
    decoder: on two cores 100 frames of a 900-frame clip took 0.73 s, against 0.89 s with FFmpeg's own
    decoding threads and an encoder thread, as those decoding threads wait on each other's progress and
    any other work stalls them (bench/bench_extraction.py). Otherwise frames are decoded on the calling
    thread and PNG-encoded on `encoders` threads (default_encoders()). Either way each frame is handed to
    `store` on the thread that encoded it, and frames leave in frame order: a few decoded frames are held
    at a time, never the clip (in parts, the PNGs of the later stretches also wait for their turn), and
    the output is the same whatever the thread counts.
    """
    info = reader.info
    indices = evenly_spaced_indices(info.frame_count, n_frames)
    total = len(indices)
    groups = reader.split(indices, parts or default_parts())
    if len(groups) > 1:
        extracted = _extract_in_parts(reader, groups, store)
    else:
        extracted = _extract_streaming(reader, indices, encoders or default_encoders(), store)
    done = 0
    with contextlib.closing(extracted):  # a progress callback that raises stops the threads at once
        for frame in extracted:
            done += 1
            if progress is not None:
                progress(done, total)
            yield frame
    if done != total:
        # Readers raise on a short stream; this guards a reader that silently stops early.
        raise RuntimeError(f"the reader returned {done} of {total} requested frames")


def _extract_streaming(
    reader: ClipReader, indices: list[int], workers: int, store: Callable[[ExtractedFrame], None] | None
) -> Iterator[ExtractedFrame]:
    """Decode on this thread, encode and store on `workers` threads, in frame order."""
    pending: deque[Future[ExtractedFrame]] = deque()
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="png") as pool:
        for frame, index in reader.read(indices):
            pending.append(pool.submit(_encode_and_store, frame, index, reader.info.timestamp_s(index), store))
            del frame  # the encoder holds it now; memory stays bounded by the pending queue
            while pending and (pending[0].done() or len(pending) > PENDING_PER_ENCODER * workers):
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def _extract_in_parts(
    reader: ClipReader, groups: list[list[int]], store: Callable[[ExtractedFrame], None] | None
) -> Iterator[ExtractedFrame]:
    """Decode, encode and store each group on a thread of its own; hand the frames on in frame order.

    The PNGs of later groups wait here until their turn, up to PARTS_WAITING_BYTES; past that their threads
    wait too, while the thread of the frame handed on next never does. A failure on any thread is raised
    here; leaving early (an error, the consumer stopping) stops the threads at their next frame and waits
    for them, so no thread outlives the reader.
    """
    ready: dict[int, ExtractedFrame] = {}
    waiting_bytes = 0
    order = [i for group in groups for i in group]
    next_up = 0  # position in `order` of the frame handed on next
    failures: list[BaseException] = []
    running = len(groups)
    changed = threading.Condition()
    stop = threading.Event()

    def work(group: list[int]) -> None:
        nonlocal running, waiting_bytes
        try:
            with contextlib.closing(reader.read(group, decoder_threads=1)) as frames:
                for frame, index in frames:
                    if stop.is_set():
                        return
                    extracted = _encode_and_store(frame, index, reader.info.timestamp_s(index), store)
                    with changed:
                        changed.wait_for(lambda: stop.is_set() or order[next_up] == index
                                         or waiting_bytes + len(extracted.png) <= PARTS_WAITING_BYTES)
                        ready[index] = extracted
                        waiting_bytes += len(extracted.png)
                        changed.notify_all()
        except BaseException as error:  # noqa: BLE001 - handed to the consuming thread, which raises it
            with changed:
                failures.append(error)
        finally:
            with changed:
                running -= 1
                changed.notify_all()

    threads = [threading.Thread(target=work, args=(group,), name=f"clip part {number}", daemon=True)
               for number, group in enumerate(groups)]
    for thread in threads:
        thread.start()
    try:
        for next_up, index in enumerate(order):  # next_up: read by the threads' wait condition
            with changed:
                changed.notify_all()  # a thread holding this frame back may hand it on now
                changed.wait_for(lambda: index in ready or failures or not running)
                if failures:
                    raise failures[0]
                if index not in ready:
                    return  # a reader that stopped early; extract_frames counts and says so
                frame = ready.pop(index)
                waiting_bytes -= len(frame.png)
                changed.notify_all()
            yield frame
    finally:
        stop.set()
        with changed:
            changed.notify_all()
        for thread in threads:
            thread.join()
    if failures:  # a thread that failed after its last frame (closing its decoder)
        raise failures[0]
