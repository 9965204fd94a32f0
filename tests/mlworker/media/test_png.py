"""The PNG writer of extracted frames: lossless, valid for other readers, refusing what it cannot store."""

from __future__ import annotations

import io
import struct
import zlib

import cv2
import numpy as np
import pytest
from PIL import Image

from mlworker.media.png import encode_png


def chunks(png: bytes) -> list[tuple[bytes, bytes, int]]:
    """(type, data, stored CRC) of each chunk after the signature."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    found, pos = [], 8
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        kind, data = png[pos + 4 : pos + 8], png[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", png[pos + 8 + length : pos + 12 + length])
        found.append((kind, data, crc))
        pos += 12 + length
    return found


@pytest.mark.parametrize("shape", [(600, 800), (1, 1), (1, 17), (33, 1), (7, 5, 3), (240, 320, 3)])
def test_round_trips_through_opencv_and_pillow(shape: tuple[int, ...]) -> None:
    frame = np.random.default_rng(sum(shape)).integers(0, 256, size=shape, dtype=np.uint8)
    png = encode_png(frame)
    assert np.array_equal(cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_UNCHANGED), frame)
    pillow = np.asarray(Image.open(io.BytesIO(png)))
    # Pillow reads colour as RGB; the frame is BGR as OpenCV and the readers hold it.
    assert np.array_equal(pillow if frame.ndim == 2 else pillow[..., ::-1], frame)


def test_chunks_are_well_formed() -> None:
    frame = np.zeros((4, 6, 3), np.uint8)
    frame[..., 2] = 200  # red, stored BGR
    found = chunks(encode_png(frame))
    assert [kind for kind, _, _ in found] == [b"IHDR", b"IDAT", b"IEND"]
    assert all(crc == zlib.crc32(kind + data) for kind, data, crc in found)
    assert struct.unpack(">IIBBBBB", found[0][1]) == (6, 4, 8, 2, 0, 0, 0)
    rows = np.frombuffer(zlib.decompress(found[1][1]), np.uint8).reshape(4, 1 + 6 * 3)
    assert (rows[:, 0] == 1).all()  # SUB filter on every row
    assert list(rows[0, 1:4]) == [200, 0, 0] and not rows[:, 4:].any()  # RGB, then no change along the row
    Image.open(io.BytesIO(encode_png(frame))).verify()  # Pillow checks the CRCs too


def test_non_contiguous_frames_are_encoded_as_seen() -> None:
    base = np.random.default_rng(1).integers(0, 256, size=(50, 80, 3), dtype=np.uint8)
    view = base[5:45:2, 10:70]
    assert np.array_equal(cv2.imdecode(np.frombuffer(encode_png(view), np.uint8), cv2.IMREAD_UNCHANGED), view)
    grey = base[..., 1]
    assert np.array_equal(cv2.imdecode(np.frombuffer(encode_png(grey), np.uint8), cv2.IMREAD_UNCHANGED), grey)


def test_compresses_and_is_deterministic() -> None:
    # A dark sector with speckle, as ultrasound frames are: far smaller than the raw pixels.
    rng = np.random.default_rng(2)
    frame = np.zeros((300, 400), np.uint8)
    frame[50:250, 100:300] = rng.integers(0, 120, size=(200, 200), dtype=np.uint8)
    png = encode_png(frame)
    assert len(png) < frame.size * 0.5
    assert png == encode_png(frame.copy())


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (np.zeros((4, 4), np.uint16), "8-bit"),
        (np.zeros((4, 4), np.float32), "8-bit"),
        (np.zeros((4, 4, 4), np.uint8), "grey"),
        (np.zeros((4, 4, 2), np.uint8), "grey"),
        (np.zeros(16, np.uint8), "grey"),
        (np.zeros((0, 4), np.uint8), "at least one pixel"),
    ],
)
def test_refuses_frames_it_cannot_store(frame: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        encode_png(frame)
