"""Media handling for uploaded clips: readers, frame extraction and crop geometry.

Names resolve on first use (PEP 562): the crop geometry the web process needs pulls in no OpenCV.
"""

from __future__ import annotations

from mlworker.lazy import lazy_exports

# Public name -> the module of this package that defines it.
_EXPORTS: dict[str, str] = {
    **dict.fromkeys(("ExtractedFrame", "default_encoders", "evenly_spaced_indices", "extract_frames"), "extraction"),
    **dict.fromkeys(("Box", "crop_box", "crop_size_px", "polygon_area_mm2", "polygon_area_px",
                     "spacing_from_two_points"), "geometry"),
    **dict.fromkeys(("ClipError", "ClipInfo", "ClipReader", "DicomReader", "VideoReader", "open_clip",
                     "require_spacing", "safe_filename"), "readers"),
}

__all__ = list(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)
