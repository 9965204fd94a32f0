"""Media handling for uploaded clips: readers, frame extraction and crop geometry."""

from mlworker.media.extraction import ExtractedFrame, evenly_spaced_indices, extract_frames
from mlworker.media.geometry import (
    Box,
    crop_box,
    crop_size_px,
    polygon_area_mm2,
    polygon_area_px,
    spacing_from_two_points,
)
from mlworker.media.readers import (
    ClipError,
    ClipInfo,
    ClipReader,
    DicomReader,
    VideoReader,
    open_clip,
    require_spacing,
    safe_filename,
)

__all__ = [
    "Box",
    "ClipError",
    "ClipInfo",
    "ClipReader",
    "DicomReader",
    "ExtractedFrame",
    "VideoReader",
    "crop_box",
    "crop_size_px",
    "evenly_spaced_indices",
    "extract_frames",
    "open_clip",
    "polygon_area_mm2",
    "polygon_area_px",
    "require_spacing",
    "safe_filename",
    "spacing_from_two_points",
]
