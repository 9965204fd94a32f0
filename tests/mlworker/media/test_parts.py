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

from mlworker.media import extraction, readers
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


def write_clip_claiming_every_frame_a_keyframe(path: Path) -> Path:
    """An mpeg4 MP4 with a keyframe every 12 frames whose container calls every frame a keyframe, as a
    writer that leaves out the sync-sample table does."""
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("mpeg4", rate=25, options={"g": "12", "bf": "0"})
        stream.width, stream.height, stream.pix_fmt, stream.bit_rate = W, H, "yuv420p", 8_000_000
        stream.time_base = Fraction(1, 25)
        for k in [*range(N), None]:
            if k is None:
                packets = stream.encode()
            else:
                video_frame = av.VideoFrame.from_ndarray(np.dstack([frame(k)] * 3), format="rgb24")
                video_frame.pts = k
                packets = stream.encode(video_frame)
            for packet in packets:
                packet.is_keyframe = True
                container.mux(packet)
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


@pytest.mark.parametrize("suffix", [".mp4", ".avi"])  # AVI has no presentation times at all
def test_streams_with_b_frames_are_decoded_from_the_start(tmp_path: Path, suffix: str) -> None:
    path = write_clip(tmp_path / f"b{suffix}", "libx264", {"g": "10", "bf": "2"})
    with open_clip(path) as reader:
        assert reader.split(range(N), 4) == [list(range(N))]  # B-frames may refer across a keyframe
        extracted = list(extract_frames(reader, N, parts=4))
    assert [f.index for f in extracted] == list(range(N))


def test_a_part_decodes_from_its_keyframe_not_the_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_clip(tmp_path / "clip.mp4", "mpeg4", {"g": "12", "bf": "0"})
    decoded: list[int] = []
    real = readers._decoded_frames

    def counting(container, stream):
        for video_frame in real(container, stream):
            decoded.append(video_frame.pts)
            yield video_frame

    monkeypatch.setattr(readers, "_decoded_frames", counting)
    with open_clip(path) as reader:
        decoded.clear()
        frames = dict((index, image) for image, index in reader.read([40, 50], decoder_threads=1))
    assert len(decoded) == 51 - 36  # from the keyframe at 36 to the last wanted frame, not from 0
    assert all(abs(float(frames[i].mean()) - float(frame(i).mean())) < 1.5 for i in (40, 50))


def test_keyframes_the_decoder_disowns_are_not_started_from(tmp_path: Path) -> None:
    path = write_clip_claiming_every_frame_a_keyframe(tmp_path / "claims.mp4")
    wanted = evenly_spaced_indices(N, 20)
    with open_clip(path) as reader:
        one_pass = list(extract_frames(reader, 20, parts=1))
        in_parts = list(extract_frames(reader, 20, parts=3))
        alone = dict((index, image) for image, index in reader.read([40, 50]))
    assert in_parts == one_pass and [f.index for f in one_pass] == wanted
    assert all(abs(float(alone[i].mean()) - float(frame(i).mean())) < 1.5 for i in (40, 50))


def test_a_seek_that_misses_decodes_from_the_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_clip(tmp_path / "clip.mp4", "mpeg4", {"g": "12", "bf": "0"})
    with open_clip(path) as reader:
        expected = list(extract_frames(reader, 20, parts=3))
    monkeypatch.setattr(VideoReader, "_seek", lambda self, decoding, keyframe: None)
    with open_clip(path) as reader:
        assert reader.split(evenly_spaced_indices(N, 20), 3) == [evenly_spaced_indices(N, 20)]  # parts would
        # each decode from the first frame: one pass instead
        assert list(extract_frames(reader, 20, parts=3)) == expected
        assert [i for _, i in reader.read([40, 50])] == [40, 50]  # a read alone still starts from the top


class PartsReader(ClipReader):
    """Two parts; the second fails after one frame when `fail` (or once all its frames are out, when
    `fail_at_end`), the first is slow. `ahead` records how far the second part was when the first finished."""

    def __init__(self, fail: bool, fail_at_end: bool = False) -> None:
        self.info = ClipInfo("video", "mp4", 20, 10.0, W, H, True, None)
        self.fail, self.fail_at_end = fail, fail_at_end
        self.closed_parts = 0
        self.second_part_read = 0
        self.ahead: int | None = None

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
                else:
                    self.second_part_read += 1
                if index == 9:
                    self.ahead = self.second_part_read
                yield frame(index), index
            if self.fail_at_end and index >= 10:
                time.sleep(0.2)  # after the consumer has taken every frame
                raise OSError("the storage went away")
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


def test_a_part_failing_after_its_last_frame_still_fails_the_extraction() -> None:
    with pytest.raises(OSError, match="storage went away"):
        list(extract_frames(PartsReader(fail=False, fail_at_end=True), 20))
    assert part_threads() == []


def test_later_parts_wait_once_their_pngs_fill_the_allowance(monkeypatch: pytest.MonkeyPatch) -> None:
    unbounded = PartsReader(fail=False)
    assert [f.index for f in extract_frames(unbounded, 20)] == list(range(20))
    assert unbounded.ahead == 10  # the fast second part was done before the slow first one
    one_png = len(extraction.encode_png(frame(0)))
    monkeypatch.setattr(extraction, "PARTS_WAITING_BYTES", 2 * one_png + one_png // 2)
    bounded = PartsReader(fail=False)
    assert [f.index for f in extract_frames(bounded, 20)] == list(range(20))
    # Two PNGs waiting, one encoded and held by the waiting thread, one decoded in its hands.
    assert bounded.ahead is not None and bounded.ahead <= 4


def test_closing_the_reader_while_parts_decode_stops_them(tmp_path: Path) -> None:
    path = write_clip(tmp_path / "clip.mp4", "mpeg4", {"g": "12", "bf": "0"})
    reader = open_clip(path)
    frames = extract_frames(reader, 40, parts=2)
    next(frames)
    reader.close()  # as if the caller left the reader's block with the extraction still running
    with pytest.raises(RuntimeError, match="closed"):
        list(frames)
    assert part_threads() == []
