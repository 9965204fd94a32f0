"""Benchmark: the real extraction task for one clip against the least work that yields the same frames.

Run with `.venv/bin/python bench/bench_extraction.py` (needs the PostgreSQL of DATABASE_URL; it creates and
then drops its own throwaway database, `bench_extraction_<name>`, and writes frames to a temporary media
folder). The clip is 30 s at 30 fps, 800 x 600, mp4v; the study takes 100 evenly spaced frames.

- floor: the least work for those 100 frames with the same decoder: grab every frame up to the last one
  wanted and retrieve (colour-convert, then to grey, as the clips are grey) only the 100 wanted.
- task: what the worker runs, clip_extract_frames: claim the clip row, open and validate the file,
  decode, PNG-encode and store (in parts from the clip's keyframes, one thread each, where the stream
  allows), upsert the frame rows, remove orphan files, record the outcome. Between rounds its frames
  (rows and files) are removed, so each round does all of that work.
- the same task's pure part, extract_frames (default parts), shows what storage and rows cost; the same
  in one pass (FFmpeg's decoding threads, PNG on encoder threads) and with every PNG encoded on the
  decoding thread show what the parts win; the task's reader alone, in one pass and in parts (open,
  validate, decode; no PNG), shows what the encoding adds to the decoding. The decoding is the same work
  either way (every frame up to the last wanted one); the parts spread it over the cores without the
  frame threads' waits on each other.
All are timed in one run, interleaved, best of --reps, as wall time (the goal) and as CPU time of the
process (all threads: FFmpeg decodes on threads of its own, the encoders on theirs). CPU time is not
inflated by other processes, and floor/task in CPU is what the wall ratio comes to when every core is
busy. On a shared machine the load average printed beside them says how far to trust the wall times.
Goal: floor / task >= 0.8 in wall time.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "studyapp.settings.test")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.test.utils import CaptureQueriesContext, setup_test_environment  # noqa: E402

from mlworker.media import default_encoders, evenly_spaced_indices, extract_frames, open_clip  # noqa: E402
from mlworker.media.extraction import default_parts  # noqa: E402
from mlworker.media.png import encode_png  # noqa: E402

GOAL = 0.8


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


def floor(path: Path, n: int) -> int:
    """The least work for the n frames: grab through to the last wanted, retrieve only the wanted, as grey."""
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    wanted = evenly_spaced_indices(int(cap.get(cv2.CAP_PROP_FRAME_COUNT)), n)
    retrieved = 0
    position = 0
    for index in wanted:
        while position <= index:
            if not cap.grab():
                raise RuntimeError(f"the clip ended at frame {position}")
            position += 1
        ok, frame = cap.retrieve()
        retrieved += ok and cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY).size > 0
    cap.release()
    return retrieved


def pure_extraction(path: Path, n: int, parts: int | None = None) -> int:
    """Open, validate and extract n PNG frames through the media package, keeping nothing."""
    with open_clip(path) as reader:
        return sum(len(f.png) > 0 for f in extract_frames(reader, n, parts=parts))


def decode_only(path: Path, n: int, parts: int = 1) -> int:
    """Open, validate and decode the n frames with the task's own reader, encoding nothing: the task's decoding
    beside the floor's, and what the PNG encoding adds on top of it. With parts, one thread per part."""
    with open_clip(path) as reader:
        groups = reader.split(evenly_spaced_indices(reader.info.frame_count, n), parts)
        counts = [0] * len(groups)
        decoder_threads = None if len(groups) == 1 else 1  # as extract_frames reads: parts decode on one thread

        def read(number: int) -> None:
            counts[number] = sum(f.size > 0 for f, _ in reader.read(groups[number], decoder_threads=decoder_threads))

        threads = [threading.Thread(target=read, args=(number,)) for number in range(len(groups))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return sum(counts)


def serial_extraction(path: Path, n: int) -> int:
    """The same frames in one pass, each PNG-encoded on the decoding thread: no encoder threads, no parts."""
    with open_clip(path) as reader:
        indices = evenly_spaced_indices(reader.info.frame_count, n)
        return sum(len(encode_png(frame)) > 0 for frame, _ in reader.read(indices))


def best_of(reps: int, jobs: dict[str, Callable[[], object]], before: dict[str, Callable[[], None]]) -> dict:
    """Best (wall, process CPU) of each job over `reps` interleaved rounds; `before[name]` runs untimed first."""
    best = {name: (float("inf"),) * 2 for name in jobs}
    for _ in range(reps):
        for name, job in jobs.items():
            before.get(name, lambda: None)()
            start = (time.perf_counter(), time.process_time())
            job()
            end = (time.perf_counter(), time.process_time())
            best[name] = tuple(min(b, e - s) for b, s, e in zip(best[name], start, end))
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--width", type=int, default=800)
    parser.add_argument("--height", type=int, default=600)
    parser.add_argument("--frames", type=int, default=100, help="frames to extract")
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()

    from studyapp.clips import services
    from studyapp.clips.models import Clip, Frame
    from studyapp.protocol.models import StudySettings
    from tests.factories import make_hand, upload_file

    setup_test_environment()
    work = Path(tempfile.mkdtemp(prefix="bench-extraction-"))
    settings.MEDIA_ROOT = work / "media"
    database = settings.DATABASES["default"]
    database.setdefault("TEST", {})["NAME"] = f"bench_extraction_{database['NAME']}"
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        path = work / "bench.mp4"
        start = time.perf_counter()
        write_clip(path, seconds=args.seconds, fps=args.fps, width=args.width, height=args.height)
        print(f"clip: {args.seconds * args.fps} frames {args.width}x{args.height} mp4v, "
              f"{path.stat().st_size / 1e6:.1f} MB, written in {time.perf_counter() - start:.1f} s; "
              f"{args.frames} frames wanted; {default_encoders()} encoder threads on {os.cpu_count()} CPUs")
        StudySettings.objects.update_or_create(id=1, defaults={"frames_per_clip": args.frames})
        clip = services.clip_upload(hand=make_hand(), upload=upload_file(path), queue_extraction=False)
        frames_dir = Path(settings.MEDIA_ROOT) / services.frames_directory(clip)

        def reset() -> None:
            Frame.objects.filter(clip=clip).delete()
            shutil.rmtree(frames_dir, ignore_errors=True)
            Clip.objects.filter(pk=clip.pk).update(extraction_status="queued")

        def task() -> None:
            assert services.clip_extract_frames(clip_id=clip.pk)

        reset()
        with CaptureQueriesContext(connection) as queries:
            task()
        assert Frame.objects.filter(clip=clip).count() == args.frames == len(list(frames_dir.iterdir()))
        assert floor(path, args.frames) == args.frames
        load_before = os.getloadavg()[0]
        best = best_of(args.reps, {
            "floor": lambda: floor(path, args.frames),
            "task": task,
            "pure": lambda: pure_extraction(path, args.frames),
            "one pass": lambda: pure_extraction(path, args.frames, parts=1),
            "serial": lambda: serial_extraction(path, args.frames),
            "decode": lambda: decode_only(path, args.frames),
            "decode in parts": lambda: decode_only(path, args.frames, parts=default_parts()),
        }, before={"task": reset})
        load_after = os.getloadavg()[0]
        with open_clip(path) as reader:
            parts = len(reader.split(evenly_spaced_indices(reader.info.frame_count, args.frames), default_parts()))
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)
        shutil.rmtree(work, ignore_errors=True)
    ratio = best["floor"][0] / best["task"][0]
    rows = [(f"floor: grab to the last wanted, retrieve {args.frames}", "floor"),
            (f"task: clip_extract_frames ({len(queries)} queries)", "task"),
            (f"  extract_frames alone ({parts} parts)", "pure"),
            (f"  the same in one pass, {default_encoders()} encoder thread(s)", "one pass"),
            ("  the same in one pass, PNG on the decoding thread", "serial"),
            ("  its reader alone, one pass: decode, no PNG", "decode"),
            (f"  its reader alone, {parts} parts: decode, no PNG", "decode in parts")]
    print(f"load average {load_before:.1f} before, {load_after:.1f} after, on {os.cpu_count()} CPUs")
    print(f"{'':<52} {'wall s':>7} {'CPU s':>7}   floor/x: {'wall':>5} {'CPU':>5}")
    for label, key in rows:
        (wall, cpu), (f_wall, f_cpu) = best[key], best["floor"]
        print(f"{label:<52} {wall:>7.3f} {cpu:>7.3f}            {f_wall / wall:>5.2f} {f_cpu / cpu:>5.2f}")
    print(f"ratio floor/task (wall): {ratio:.2f} (goal >= {GOAL}: {'met' if ratio >= GOAL else 'NOT met'})")
    return 0 if ratio >= GOAL else 1


if __name__ == "__main__":
    sys.exit(main())
