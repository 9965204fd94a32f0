"""Frame extraction: evenly spaced indices and lossless PNG frames with timestamps."""

from __future__ import annotations

import hashlib
import weakref
from collections.abc import Iterator, Sequence
from pathlib import Path

import cv2
import numpy as np
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from mlworker.media.extraction import PENDING_PER_ENCODER, ExtractedFrame, evenly_spaced_indices, extract_frames
from mlworker.media.readers import ClipInfo, ClipReader, open_clip

W, H, FPS = 64, 48, 25.0


def write_video(path: Path, n: int, *, colour: bool = False) -> Path:
    """A small MJPG AVI whose frames differ in brightness and in a moving block."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), FPS, (W, H))
    assert writer.isOpened()
    for i in range(n):
        g = np.full((H, W), 10 + 9 * i, np.uint8)
        g[10:22, i : i + 10] = 240
        frame = np.dstack([g, 255 - g, np.full_like(g, 90)]) if colour else cv2.cvtColor(g, cv2.COLOR_GRAY2BGR)
        writer.write(frame)
    writer.release()
    return path


def write_dicom(path: Path, pixels: np.ndarray, *, frame_time_ms: float | None) -> Path:
    """A multi-frame MONOCHROME2 ultrasound DICOM holding `pixels` (frames, rows, cols)."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.3.1"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Modality = "US"
    ds.NumberOfFrames, ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    if frame_time_ms is not None:
        ds.FrameTime = frame_time_ms
    ds.PixelData = pixels.tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path


def png_colour_type(png: bytes) -> int:
    """Colour type byte of the IHDR chunk: 0 grey, 2 RGB."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and png[12:16] == b"IHDR"
    return png[25]


# --------------------------------------------------------------------------------------------------
# evenly_spaced_indices


@pytest.mark.parametrize(("total", "n"), [(100, 10), (900, 100), (101, 100), (7, 3), (8, 3), (1000, 2), (37, 36)])
def test_indices_include_both_ends_and_are_evenly_spaced(total: int, n: int) -> None:
    indices = evenly_spaced_indices(total, n)
    assert len(indices) == n
    assert indices[0] == 0 and indices[-1] == total - 1
    gaps = np.diff(indices)
    assert gaps.min() >= 1 and gaps.max() - gaps.min() <= 1
    expected = np.floor(np.linspace(0, total - 1, n) + 0.5).astype(int).tolist()
    assert indices == expected


def test_indices_known_values() -> None:
    assert evenly_spaced_indices(10, 4) == [0, 3, 6, 9]
    assert evenly_spaced_indices(5, 2) == [0, 4]
    assert evenly_spaced_indices(9, 1) == [0]


@pytest.mark.parametrize(("total", "n"), [(5, 10), (10, 10), (1, 1), (0, 3)])
def test_all_frames_when_clip_is_short(total: int, n: int) -> None:
    assert evenly_spaced_indices(total, n) == list(range(total))


@pytest.mark.parametrize(("total", "n"), [(10, 0), (10, -1), (-1, 5)])
def test_indices_refuse_bad_arguments(total: int, n: int) -> None:
    with pytest.raises(ValueError):
        evenly_spaced_indices(total, n)


# --------------------------------------------------------------------------------------------------
# extract_frames


def test_extract_grey_video_frames(tmp_path: Path) -> None:
    path = write_video(tmp_path / "clip.avi", 20)
    calls: list[tuple[int, int]] = []
    with open_clip(path) as reader:
        frames = list(extract_frames(reader, 6, progress=lambda done, total: calls.append((done, total))))
        originals = dict((i, f) for f, i in reader.read([f.index for f in frames]))
    expected = evenly_spaced_indices(20, 6)
    assert [f.index for f in frames] == expected == [0, 4, 8, 11, 15, 19]
    assert [f.timestamp_s for f in frames] == pytest.approx([i / FPS for i in expected])
    assert calls == [(k, 6) for k in range(1, 7)]
    for f in frames:
        assert (f.width, f.height, f.channels) == (W, H, 1)
        assert png_colour_type(f.png) == 0
        decoded = cv2.imdecode(np.frombuffer(f.png, np.uint8), cv2.IMREAD_UNCHANGED)
        assert decoded.shape == (H, W)
        np.testing.assert_array_equal(decoded, originals[f.index])


def test_extract_colour_video_frames_as_bgr_png(tmp_path: Path) -> None:
    path = write_video(tmp_path / "clip.avi", 8, colour=True)
    with open_clip(path) as reader:
        frames = list(extract_frames(reader, 3))
        originals = dict((i, f) for f, i in reader.read([0, 4, 7]))
    assert [f.index for f in frames] == [0, 4, 7]
    for f in frames:
        assert f.channels == 3 and png_colour_type(f.png) == 2
        decoded = cv2.imdecode(np.frombuffer(f.png, np.uint8), cv2.IMREAD_UNCHANGED)
        np.testing.assert_array_equal(decoded, originals[f.index])


def test_extract_dicom_is_lossless_and_timed_from_frame_time(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    pixels = rng.integers(0, 256, size=(5, H, W), dtype=np.uint8)
    path = write_dicom(tmp_path / "us.dcm", pixels, frame_time_ms=50.0)
    with open_clip(path) as reader:
        frames = list(extract_frames(reader, 100))  # more than the clip has: every frame
    assert [f.index for f in frames] == [0, 1, 2, 3, 4]
    assert [f.timestamp_s for f in frames] == pytest.approx([0.0, 0.05, 0.1, 0.15, 0.2])
    for f in frames:
        decoded = cv2.imdecode(np.frombuffer(f.png, np.uint8), cv2.IMREAD_UNCHANGED)
        np.testing.assert_array_equal(decoded, pixels[f.index])


def test_no_frame_rate_means_no_timestamps(tmp_path: Path) -> None:
    path = write_dicom(tmp_path / "us.dcm", np.zeros((3, H, W), np.uint8), frame_time_ms=None)
    with open_clip(path) as reader:
        assert reader.info.fps is None
        assert [f.timestamp_s for f in extract_frames(reader, 3)] == [None, None, None]


def test_extraction_is_deterministic(tmp_path: Path) -> None:
    path = write_video(tmp_path / "clip.avi", 15)

    def run() -> list[ExtractedFrame]:
        with open_clip(path) as reader:
            return list(extract_frames(reader, 5))

    assert run() == run()


def test_extract_refuses_zero_frames(tmp_path: Path) -> None:
    with open_clip(write_video(tmp_path / "clip.avi", 4)) as reader, pytest.raises(ValueError):
        list(extract_frames(reader, 0))


class ShortReader(ClipReader):
    """A reader that silently yields fewer frames than asked (a broken reader implementation)."""

    def __init__(self) -> None:
        self.info = ClipInfo("video", "mp4", 10, 10.0, W, H, True, None)

    def read(self, indices: Sequence[int]) -> Iterator[tuple[np.ndarray, int]]:
        for index in self._wanted(indices)[:2]:
            yield np.zeros((H, W), np.uint8), index


def test_extract_detects_a_reader_that_stops_early() -> None:
    with pytest.raises(RuntimeError, match="2 of 5"):
        list(extract_frames(ShortReader(), 5))


class CountingReader(ClipReader):
    """Noise frames, counting how many of those it handed out are still alive each time it decodes another."""

    def __init__(self, n: int) -> None:
        self.info = ClipInfo("video", "mp4", n, 10.0, W, H, True, None)
        self.alive: list[weakref.ref] = []
        self.most_alive = 0

    def read(self, indices: Sequence[int]) -> Iterator[tuple[np.ndarray, int]]:
        rng = np.random.default_rng(0)
        for index in self._wanted(indices):
            self.alive = [ref for ref in self.alive if ref() is not None]
            self.most_alive = max(self.most_alive, len(self.alive))
            frame = rng.integers(0, 256, size=(H, W), dtype=np.uint8)
            self.alive.append(weakref.ref(frame))
            yield frame, index


@pytest.mark.parametrize("encoders", [1, 3])
def test_extraction_streams_holding_a_few_frames_not_the_clip(encoders: int) -> None:
    reader = CountingReader(120)
    for extracted in extract_frames(reader, 120, encoders=encoders):
        del extracted  # as the worker does: stored, then dropped
    assert reader.most_alive <= PENDING_PER_ENCODER * encoders + 2


def test_parallel_encoding_gives_the_same_frames_in_order(tmp_path: Path) -> None:
    path = write_video(tmp_path / "clip.avi", 24)

    def run(encoders: int, parts: int = 1) -> list[ExtractedFrame]:
        with open_clip(path) as reader:
            return list(extract_frames(reader, 12, encoders=encoders, parts=parts))

    one = run(1)
    assert run(4) == one == run(1, parts=3) and [f.index for f in one] == sorted(f.index for f in one)
    assert all(f.sha256 == hashlib.sha256(f.png).hexdigest() for f in one)
