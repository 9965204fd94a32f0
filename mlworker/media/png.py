"""Lossless PNG for extracted frames: rows SUB-filtered with numpy, deflated by ISA-L.

Extraction stores each of a clip's 100 frames as PNG, and encoding was the cost it added to decoding: 4.0 ms
of CPU per 800 x 600 grey frame through OpenCV's libpng with zlib, even at level 1 with its fastest
strategy, and neither zlib-ng nor libdeflate did better on speckle (3.7-4.2 ms). ISA-L's deflate at level 1
takes 1.5 ms (0.9 ms for a sector-shaped frame on black, against 3.7 ms) for files of the same size within
1% on speckle and sector frames, 9% larger on the smoother phantom frames. A PNG is three short chunks
around the deflated rows, so this module writes them itself; any PNG reader (browsers, OpenCV, Pillow)
reads them.
"""

from __future__ import annotations

import struct

import numpy as np
from isal import isal_zlib

__all__ = ["PNG_DEFLATE_LEVEL", "encode_png"]

# ISA-L levels run 0-3; 1 compresses speckle as well as 2 and 3 and as zlib's level 9 within 0.3%.
PNG_DEFLATE_LEVEL = 1
_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_FILTER_SUB = 1  # each byte minus the same channel of the pixel to its left (PNG spec 9.2)
_COLOUR_TYPE = {1: 0, 3: 2}  # channels -> PNG colour type: greyscale, truecolour (RGB)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", isal_zlib.crc32(data, isal_zlib.crc32(kind)))


def encode_png(frame: np.ndarray) -> bytes:
    """An 8-bit frame, 2-D grey or (height, width, 3) BGR as OpenCV holds it, as lossless PNG bytes."""
    if frame.dtype != np.uint8:
        raise ValueError(f"frames are stored as 8-bit PNG; got pixels of type {frame.dtype}")
    channels = 1 if frame.ndim == 2 else (frame.shape[2] if frame.ndim == 3 else 0)
    if channels not in _COLOUR_TYPE:
        raise ValueError(f"a frame must be grey (H, W) or BGR (H, W, 3); got shape {frame.shape}")
    height, width = frame.shape[:2]
    if height < 1 or width < 1:
        raise ValueError(f"a frame must have at least one pixel; got shape {frame.shape}")
    pixels = frame.reshape(height, width * channels) if channels == 1 else frame[..., ::-1].reshape(height, -1)
    # Filtered scanlines: a filter-type byte, the first pixel as is, then differences (uint8 wraps mod 256).
    rows = np.empty((height, 1 + width * channels), dtype=np.uint8)
    rows[:, 0] = _FILTER_SUB
    rows[:, 1 : 1 + channels] = pixels[:, :channels]
    np.subtract(pixels[:, channels:], pixels[:, :-channels], out=rows[:, 1 + channels :])
    header = struct.pack(">IIBBBBB", width, height, 8, _COLOUR_TYPE[channels], 0, 0, 0)
    return b"".join((
        _SIGNATURE,
        _chunk(b"IHDR", header),
        _chunk(b"IDAT", isal_zlib.compress(rows.data, PNG_DEFLATE_LEVEL)),
        _chunk(b"IEND", b""),
    ))
