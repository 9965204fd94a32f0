"""Variable-frame-rate video: frames counted and timed from the stream, not from the header's promise."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from mlworker.media.extraction import extract_frames
from mlworker.media.readers import ClipError, ClipInfo, open_clip
from mlworker.phantom.writers import write_avi_with_repeats

W, H, NOMINAL_FPS = 64, 48, 30.0
STORED, TICKS = 68, 444  # the export in the issue: 444 frames promised, 68 stored, the rest zero-byte repeats


def vfr_ticks(stored: int = STORED, total: int = TICKS, *, last: int | None = None) -> list[int]:
    """Irregular ticks from 0 to `last` (the final tick by default), as a scanner storing only changed frames."""
    last = total - 1 if last is None else last
    inner = np.random.default_rng(11).choice(np.arange(1, last), stored - 2, replace=False)
    return [0, *sorted(int(t) for t in inner), last]


def frames(n: int = STORED) -> list[np.ndarray]:
    """Frame k has brightness 10 + 3k, so a frame read at the wrong position is at least 3 levels off."""
    return [np.full((H, W), 10 + 3 * k, np.uint8) for k in range(n)]


def write_vfr(path: Path, *, last: int | None = None) -> tuple[Path, list[int]]:
    ticks = vfr_ticks(last=last)
    return write_avi_with_repeats(frames(), ticks, TICKS, path, fps=NOMINAL_FPS), ticks


def test_header_promising_444_frames_with_68_stored_reads_68_at_their_true_times(tmp_path: Path) -> None:
    path, ticks = write_vfr(tmp_path / "vfr.avi")
    header = path.read_bytes()
    assert struct.unpack_from("<I", header, header.index(b"avih") + 8 + 16)[0] == TICKS  # dwTotalFrames
    with open_clip(path) as reader:
        info = reader.info
        assert (info.format, info.container, info.frame_count, info.width, info.height) == ("video", "avi", STORED, W, H)
        assert info.frame_times_s == pytest.approx([t / NOMINAL_FPS for t in ticks], abs=1e-9)
        # Not the header's 30 fps: 67 intervals over the clip's true duration.
        assert info.fps == pytest.approx((STORED - 1) / (ticks[-1] / NOMINAL_FPS))
        got = list(reader.read(range(STORED)))
    assert [i for _, i in got] == list(range(STORED))
    assert [int(f[0, 0]) for f, _ in got] == [10 + 3 * k for k in range(STORED)]
    assert all(f.shape == (H, W) for f, _ in got)


def test_repeats_after_the_last_stored_frame_are_not_a_truncation(tmp_path: Path) -> None:
    path, ticks = write_vfr(tmp_path / "vfr.avi", last=400)  # ticks 401..443 all repeat the last frame
    with open_clip(path) as reader:
        assert reader.info.frame_count == STORED
        assert reader.info.timestamp_s(STORED - 1) == pytest.approx(400 / NOMINAL_FPS)


def test_frame_limit_counts_stored_frames_not_the_header(tmp_path: Path) -> None:
    path, _ = write_vfr(tmp_path / "vfr.avi")
    with open_clip(path, max_frames=100) as reader:
        assert reader.info.frame_count == STORED
    with pytest.raises(ClipError) as caught:
        open_clip(path, max_frames=50)
    assert caught.value.code == "too_many_frames"


def test_variable_rate_avi_cut_inside_its_frame_list_is_truncated(tmp_path: Path) -> None:
    # Drop the index and the second half of the 'movi' list, patching every size to match: the file is
    # consistent on its own, but has fewer chunks (stored or repeated) than its header promises.
    path, _ = write_vfr(tmp_path / "vfr.avi")
    data = bytearray(path.read_bytes())
    movi = data.index(b"movi") - 8
    movi_size = struct.unpack_from("<I", data, movi + 4)[0]
    pos, end, kept = movi + 12, movi + 8 + movi_size, 0
    while pos < end and kept < TICKS // 2:
        size = struct.unpack_from("<I", data, pos + 4)[0]
        pos += 8 + size + (size & 1)
        kept += 1
    data = data[:pos]
    struct.pack_into("<I", data, 4, pos - 8)
    struct.pack_into("<I", data, movi + 4, pos - movi - 8)
    path.write_bytes(bytes(data))
    with pytest.raises(ClipError) as caught:
        open_clip(path)
    assert caught.value.code == "truncated"
    assert "incomplete" in caught.value.message


def test_extraction_stamps_frames_with_their_true_times(tmp_path: Path) -> None:
    path, ticks = write_vfr(tmp_path / "vfr.avi")
    with open_clip(path) as reader:
        extracted = list(extract_frames(reader, 5))
    indices = [f.index for f in extracted]
    assert indices == [0, 17, 34, 50, 67]
    assert [f.timestamp_s for f in extracted] == pytest.approx([ticks[i] / NOMINAL_FPS for i in indices])


def test_timestamp_falls_back_to_the_frame_rate_only_when_times_are_unknown() -> None:
    base = dict(format="video", container="avi", frame_count=3, width=W, height=H, is_grey=True, pixel_spacing_mm=None)
    assert ClipInfo(fps=25.0, **base).timestamp_s(2) == pytest.approx(0.08)
    assert ClipInfo(fps=None, **base).timestamp_s(2) is None
    assert ClipInfo(fps=25.0, frame_times_s=(0.0, 0.5, 0.6), **base).timestamp_s(2) == 0.6


@pytest.mark.parametrize("suffix", [".mp4", ".avi"])
def test_h264_with_b_frames_reads_in_presentation_order(tmp_path: Path, suffix: str) -> None:
    import av

    # B-frames reach the demuxer out of display order: counting and timing must follow presentation.
    path = tmp_path / f"bframes{suffix}"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        stream.options = {"bf": "3", "g": "12"}
        for k in range(30):
            frame = av.VideoFrame.from_ndarray(np.full((H, W, 3), 10 + 7 * k, np.uint8), format="rgb24")
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
    with open_clip(path) as reader:
        assert reader.info.frame_count == 30 and reader.info.fps == pytest.approx(25.0)
        assert reader.info.frame_times_s == pytest.approx([k / 25 for k in range(30)])
        means = [float(frame.mean()) for frame, _ in reader.read(range(30))]
    assert means == pytest.approx([10 + 7 * k for k in range(30)], abs=3)
