"""Extraction in parts: stretches of a clip decoded at once from their keyframes give the frames one pass gives."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from mlworker.media.extraction import evenly_spaced_indices, extract_frames
from mlworker.media.readers import ClipError, ClipInfo, ClipReader, VideoReader, open_clip

W, H, N = 96, 64, 60


def frame(k: int) -> np.ndarray:
    """Frame k: mean brightness 30 + 3k, with a bar whose place moves, so P-frames carry real changes."""
    image = np.full((H, W), 30 + 3 * k, np.uint8)
    image[:, (k * 5) % (W - 8) : (k * 5) % (W - 8) + 8] = 250
    return image


def write_clip(path: Path, codec: str, options: dict[str, str]) -> Path:
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=25, options=options)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p" if codec != "mjpeg" else "yuvj420p"
        stream.time_base = Fraction(1, 25)
        stream.bit_rate = 8_000_000  # near-lossless, so each decoded frame can be told from its neighbours
        for k in range(N):
            video_frame = av.VideoFrame.from_ndarray(np.dstack([frame(k)] * 3), format="rgb24")
            video_frame.pts = k
            container.mux(stream.encode(video_frame))
        container.mux(stream.encode())
    return path


CLIPS = {
    "mpeg4, a keyframe every 12": ("clip.mp4", "mpeg4", {"g": "12", "bf": "0"}),
    "H.264 without B-frames, a keyframe every 10": ("clip.mp4", "libx264", {"g": "10", "bf": "0"}),
    "MJPEG, every frame a keyframe": ("clip.avi", "mjpeg", {}),
}


@pytest.mark.parametrize("name", CLIPS)
def test_parts_give_the_frames_of_one_pass(tmp_path: Path, name: str) -> None:
    filename, codec, options = CLIPS[name]
    path = write_clip(tmp_path / filename, codec, options)
    wanted = evenly_spaced_indices(N, 20)
    with open_clip(path) as reader:
        groups = reader.split(wanted, 3)
        one_pass = list(extract_frames(reader, 20, parts=1))
        in_parts = list(extract_frames(reader, 20, parts=3))
        direct = [reader.read(group) for group in groups]  # each group read alone, from its keyframe
        frames_by_index = {index: image for part in direct for image, index in part}
    assert len(groups) == 3 and [i for g in groups for i in g] == wanted
    assert in_parts == one_pass and [f.index for f in one_pass] == wanted
    sequential = dict((index, image) for image, index in open_clip(path).read(wanted))
    assert all(np.array_equal(frames_by_index[i], sequential[i]) for i in sequential)
    # Lossy codecs round a little; the frame at each index is the frame written there (neighbours differ by 3).
    assert all(abs(float(sequential[i].mean()) - float(frame(i).mean())) < 1.5 for i in sequential)


def test_streams_with_b_frames_are_decoded_from_the_start(tmp_path: Path) -> None:
    path = write_clip(tmp_path / "b.mp4", "libx264", {"g": "10", "bf": "2"})
    with open_clip(path) as reader:
        assert reader.split(range(N), 4) == [list(range(N))]  # B-frames may refer across a keyframe
        extracted = list(extract_frames(reader, N, parts=4))
    assert [f.index for f in extracted] == list(range(N))


def test_a_seek_that_misses_decodes_from_the_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_clip(tmp_path / "clip.mp4", "mpeg4", {"g": "12", "bf": "0"})
    with open_clip(path) as reader:
        expected = list(extract_frames(reader, 20, parts=3))
    monkeypatch.setattr(VideoReader, "_seek", lambda self, demuxer, stream, keyframe: False)
    with open_clip(path) as reader:
        assert list(extract_frames(reader, 20, parts=3)) == expected


class PartsReader(ClipReader):
    """Two parts; the second fails after one frame when `fail`, the first is slow."""

    def __init__(self, fail: bool) -> None:
        self.info = ClipInfo("video", "mp4", 20, 10.0, W, H, True, None)
        self.fail = fail
        self.closed_parts = 0

    def split(self, indices: Sequence[int], parts: int) -> list[list[int]]:
        wanted = self._wanted(indices)
        return [wanted[: len(wanted) // 2], wanted[len(wanted) // 2 :]]

    def read(self, indices: Sequence[int], *, decoder_threads: int | None = None) -> Iterator[tuple[np.ndarray, int]]:
        try:
            for position, index in enumerate(self._wanted(indices)):
                if self.fail and index >= 10 and position == 1:
                    raise ClipError("truncated", "cut short")
                if index < 10:
                    time.sleep(0.01)
                yield frame(index), index
        finally:
            self.closed_parts += 1


def part_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("clip part")]


def test_a_failing_part_raises_and_no_thread_outlives_it() -> None:
    reader = PartsReader(fail=True)
    with pytest.raises(ClipError, match="cut short"):
        list(extract_frames(reader, 20))
    assert part_threads() == [] and reader.closed_parts == 2


def test_a_consumer_that_stops_stops_the_parts() -> None:
    reader = PartsReader(fail=False)

    def progress(done: int, total: int) -> None:
        if done == 3:
            raise RuntimeError("the lease was lost")

    with pytest.raises(RuntimeError, match="lease"):
        list(extract_frames(reader, 20, progress=progress))
    assert part_threads() == [] and reader.closed_parts == 2
    assert [f.index for f in extract_frames(PartsReader(fail=False), 20)] == list(range(20))
