"""Benchmark: extracting 100 PNG frames from a 30 s clip versus a bare OpenCV decode of the whole file.

Run with `.venv/bin/python bench/bench_extraction.py`. Goal: bare / extraction >= 0.8, i.e. extraction
(open + validation + decode + PNG encoding) costs at most 25 % more than just decoding every frame.
A third line times seeking to each target frame instead of grabbing through, the alternative
VideoReader.read does not use.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mlworker.media import evenly_spaced_indices, extract_frames, open_clip  # noqa: E402


def write_clip(path: Path, *, seconds: int, fps: int, width: int, height: int, seed: int = 0) -> None:
    """Write an ultrasound-like grey clip: drifting speckle, a pulsing dark ellipse and fresh noise each frame."""
    rng = np.random.default_rng(seed)
    margin = 64
    speckle = rng.rayleigh(60.0, size=(height + 2 * margin, width + 2 * margin)).astype(np.float32)
    speckle = cv2.GaussianBlur(speckle, (0, 0), 1.2)
    speckle = np.clip(speckle, 0, 255).astype(np.uint8)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), float(fps), (width, height))
    if not writer.isOpened():
        raise RuntimeError("OpenCV cannot write mp4v here")
    try:
        for i in range(seconds * fps):
            # Probe motion: the speckle field slides a few pixels, as when the operator sweeps the wrist.
            dx = int(round(margin * 0.8 * np.sin(i / 40.0)))
            dy = int(round(margin * 0.3 * np.cos(i / 55.0)))
            frame = speckle[margin + dy : margin + dy + height, margin + dx : margin + dx + width].copy()
            cv2.ellipse(
                frame,
                (width // 2 + dx, height // 2 + dy),
                (60 + i % 10, 35),
                0,
                0,
                360,
                20,
                -1,
            )
            noise = rng.integers(0, 24, size=frame.shape, dtype=np.uint8)
            frame = cv2.add(frame, noise)
            writer.write(cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR))
    finally:
        writer.release()


def bare_decode(path: Path) -> int:
    """Decode and convert every frame with plain OpenCV, as a floor for any extraction."""
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    count = 0
    while True:
        ok, _ = cap.read()
        if not ok:
            break
        count += 1
    cap.release()
    return count


def extraction(path: Path, n: int) -> int:
    """Open, validate and extract n PNG frames through the media package."""
    with open_clip(path) as reader:
        return sum(len(f.png) > 0 for f in extract_frames(reader, n))


def seek_per_frame(path: Path, n: int) -> int:
    """Alternative read strategy: seek to each target instead of grabbing through (PNG included)."""
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    count = 0
    for index in evenly_spaced_indices(total, n):
        cap.set(cv2.CAP_PROP_POS_FRAMES, index)
        ok, frame = cap.read()
        if ok:
            grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
            count += cv2.imencode(".png", grey, [cv2.IMWRITE_PNG_COMPRESSION, 1])[0]
    cap.release()
    return count


def best_of(reps: int, jobs: dict[str, Callable[[], int]]) -> dict[str, float]:
    """Best wall time of each job over `reps` interleaved rounds."""
    best = {name: float("inf") for name in jobs}
    for _ in range(reps):
        for name, job in jobs.items():
            start = time.perf_counter()
            job()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--width", type=int, default=800)
    parser.add_argument("--height", type=int, default=600)
    parser.add_argument("--frames", type=int, default=100, help="frames to extract")
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.mp4"
        start = time.perf_counter()
        write_clip(path, seconds=args.seconds, fps=args.fps, width=args.width, height=args.height)
        print(
            f"clip: {args.seconds * args.fps} frames {args.width}x{args.height} mp4v, "
            f"{path.stat().st_size / 1e6:.1f} MB, written in {time.perf_counter() - start:.1f} s"
        )
        assert bare_decode(path) == args.seconds * args.fps
        assert extraction(path, args.frames) == args.frames
        best = best_of(
            args.reps,
            {
                "bare": lambda: bare_decode(path),
                "extraction": lambda: extraction(path, args.frames),
                "seek": lambda: seek_per_frame(path, args.frames),
            },
        )
    print(f"bare OpenCV decode of all frames:        {best['bare']:.3f} s")
    print(f"extract_frames(open_clip(path), {args.frames}):   {best['extraction']:.3f} s")
    print(f"(alternative) seek to each target + PNG: {best['seek']:.3f} s")
    print(f"ratio bare/extraction: {best['bare'] / best['extraction']:.2f} (goal >= 0.8)")


if __name__ == "__main__":
    main()
