"""Clip readers for uploaded wrist-ultrasound clips: one class per format, all yielding (frame, index)."""

from __future__ import annotations

import abc
import itertools
import math
import os
import struct
import threading
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import av
import numpy as np
from av.video.reformatter import VideoReformatter
import pydicom
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.errors import InvalidDicomError
from pydicom.multival import MultiValue
from pydicom.pixels import apply_color_lut, get_decoder, iter_pixels
from pydicom.uid import UID, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from mlworker.threads import available_cpus

__all__ = [
    "CLIP_ERROR_CODES",
    "ClipError",
    "ClipInfo",
    "ClipReader",
    "DicomReader",
    "VideoReader",
    "open_clip",
    "require_spacing",
    "safe_filename",
    "stored_extension",
]

CLIP_ERROR_CODES = frozenset(
    {
        "bad_filename",
        "unsupported_type",
        "not_a_clip",
        "truncated",
        "no_frames",
        "unsupported_codec",
        "too_large_dimensions",
        "too_small_dimensions",
        "too_many_frames",
        "bad_dicom",
        "missing_spacing",
        "not_ultrasound",
    }
)

MIN_DIMENSION_PX = 16
VIDEO_EXTENSIONS = frozenset({".mp4", ".avi", ".mov"})
DICOM_EXTENSIONS = frozenset({".dcm", ".dicom"})
# Largest spread between B, G and R still called grey: lossy codecs and YBR 4:2:2 round chroma by a
# level or two, while any real colour (Doppler, coloured overlay text) differs by far more.
GREY_TOLERANCE = 4
# QuickTime files written without an 'ftyp' box start directly with one of these top-level atoms.
_BARE_QUICKTIME_ATOMS = frozenset({b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"})
_MAX_TOP_LEVEL_BOXES = 10_000
# Magic numbers of files clinicians upload by mistake, so the refusal can say what the file is.
_KNOWN_OTHER_FORMATS: tuple[tuple[int, bytes, str], ...] = (
    (0, b"\x89PNG", "a PNG still image"),
    (0, b"\xff\xd8\xff", "a JPEG still image"),
    (0, b"GIF8", "a GIF image"),
    (0, b"%PDF", "a PDF document"),
    (0, b"PK\x03\x04", "a ZIP archive (extract it and upload the clip inside)"),
    (0, b"\x1a\x45\xdf\xa3", "a Matroska/WebM video"),
    (0, b"\x00\x00\x01\xba", "an MPEG program stream"),
    (0, b"\x47", "an MPEG transport stream"),
)

_UNITS_CM = 3  # PhysicalUnitsX/YDirection code for centimetres (DICOM PS3.3 C.8.5.5.1.15)
_SPATIAL_FORMAT_2D = 1
_DATA_TYPE_TISSUE = 1


class ClipError(ValueError):
    """An uploaded clip that cannot be used, with a machine-readable code and a message for the uploader."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __repr__(self) -> str:
        return f"ClipError({self.code!r}, {self.message!r})"


@dataclass(frozen=True)
class ClipInfo:
    """What a clip is: format, size, frame rate, grey or colour, and physical calibration when known."""

    format: Literal["video", "dicom"]
    container: str
    frame_count: int
    fps: float | None
    width: int
    height: int
    is_grey: bool
    pixel_spacing_mm: tuple[float, float] | None  # (row, col) mm per pixel
    manufacturer: str | None = None
    model_name: str | None = None
    institution_name: str | None = None  # DICOM InstitutionName: which site acquired it (studyapp.sites)
    transducer: str | None = None
    frequency_mhz: float | None = None
    # Seconds from the first frame to each frame, from the stream's own timestamps (None: not recorded,
    # frames are then taken as evenly spaced at fps). Variable-rate clips need these, not index / fps.
    frame_times_s: tuple[float, ...] | None = None

    def timestamp_s(self, index: int) -> float | None:
        """Time of frame `index` from the first frame: the recorded time, else index / fps, else None."""
        if self.frame_times_s is not None:
            return self.frame_times_s[index]
        return index / self.fps if self.fps else None


# The extension a stored clip gets from the format found in its content (not from the uploader's name).
STORED_EXTENSIONS = {"mp4": ".mp4", "mov": ".mov", "avi": ".avi", "dicom": ".dcm"}


def stored_extension(info: ClipInfo) -> str:
    """'.mp4', '.mov', '.avi' or '.dcm' for the container the reader found."""
    return STORED_EXTENSIONS[info.container]


def require_spacing(info: ClipInfo) -> tuple[float, float]:
    """Return the clip's (row, col) pixel spacing in mm or raise ClipError('missing_spacing')."""
    if info.pixel_spacing_mm is None:
        raise ClipError(
            "missing_spacing",
            "This clip does not say how large a pixel is, so the 15 mm crop cannot be sized. "
            "Calibrate it by clicking two depth-scale marks a known distance apart, "
            "or upload the DICOM export from the scanner instead.",
        )
    return info.pixel_spacing_mm


class ClipReader(abc.ABC):
    """A clip opened for reading: `info` describes it, `read` yields (frame, index) in ascending order."""

    info: ClipInfo

    @abc.abstractmethod
    def read(self, indices: Sequence[int], *, decoder_threads: int | None = None) -> Iterator[tuple[np.ndarray, int]]:
        """Yield (frame, index) for the given frame indices in ascending order; grey frames are 2-D, colour BGR.

        `decoder_threads` caps the decoder's own threads (None: one per core) where the format has them.
        """

    def split(self, indices: Sequence[int], parts: int) -> list[list[int]]:
        """The wanted indices in up to `parts` ascending groups that `read` can decode at once, each from its
        own thread, for the same frames as one read of them all. One group unless the format allows it.
        (extract_frames reads each of several groups with decoder_threads=1.)"""
        wanted = self._wanted(indices)
        return [wanted] if wanted else []

    def close(self) -> None:
        """Release any decoder held open."""

    def __enter__(self) -> ClipReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _wanted(self, indices: Sequence[int]) -> list[int]:
        """Sorted, de-duplicated indices, refusing any outside the clip."""
        wanted = sorted({int(i) for i in indices})
        if wanted and (wanted[0] < 0 or wanted[-1] >= self.info.frame_count):
            raise IndexError(
                f"frame indices must lie in [0, {self.info.frame_count - 1}], got {wanted[0]}..{wanted[-1]}"
            )
        return wanted


def _is_grey_bgr(frame: np.ndarray) -> bool:
    """True when the three channels of a BGR (or RGB) frame are equal up to GREY_TOLERANCE."""
    if frame.ndim == 2:
        return True
    channels = frame.astype(np.int16)
    spread = max(int(np.abs(channels[..., 0] - channels[..., 1]).max()),
                 int(np.abs(channels[..., 1] - channels[..., 2]).max()))
    return spread <= GREY_TOLERANCE


def _rgb_to_grey(rgb: np.ndarray) -> np.ndarray:
    """ITU-R BT.601 luma of an RGB uint8 frame, rounded in fixed point as OpenCV's RGB2GRAY does."""
    weighted = rgb[..., 0].astype(np.uint32) * 4899 + rgb[..., 1].astype(np.uint32) * 9617 + \
        rgb[..., 2].astype(np.uint32) * 1868
    return ((weighted + (1 << 13)) >> 14).astype(np.uint8)


def _check_dimensions(width: int, height: int, max_width: int, max_height: int) -> None:
    """Refuse frames too small to hold a 15 mm crop or too large to be a scanner image."""
    if width > max_width or height > max_height:
        raise ClipError(
            "too_large_dimensions",
            f"The frames are {width} × {height} pixels, larger than the {max_width} × {max_height} "
            "limit for ultrasound clips. Export the clip from the scanner at its native size.",
        )
    if width < MIN_DIMENSION_PX or height < MIN_DIMENSION_PX:
        raise ClipError(
            "too_small_dimensions",
            f"The frames are only {width} × {height} pixels, too small to be an ultrasound image. "
            "Export the full-size clip from the scanner.",
        )


def _check_frame_count(frame_count: int, max_frames: int) -> None:
    """Refuse clips with more frames than the study accepts."""
    if frame_count > max_frames:
        raise ClipError(
            "too_many_frames",
            f"The clip has {frame_count} frames, more than the {max_frames} allowed. "
            "Trim it to the short-axis sweep and upload it again.",
        )


# --------------------------------------------------------------------------------------------------
# Video (MP4, AVI, MOV) through PyAV, the maintained binding to FFmpeg
# --------------------------------------------------------------------------------------------------


def _sniff_video_container(head: bytes) -> str | None:
    """Return 'mp4', 'mov' or 'avi' from the first bytes of a file, or None."""
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "avi"
    if len(head) >= 12 and head[4:8] == b"ftyp":
        return "mov" if head[8:12] == b"qt  " else "mp4"
    if len(head) >= 8 and head[4:8] in _BARE_QUICKTIME_ATOMS:
        return "mov"
    return None


def _iso_box_problem(path: Path) -> str | None:
    """Walk the top-level MP4/MOV boxes: 'truncated', 'no_frames' (no track) or None when sound."""
    size = path.stat().st_size
    has_moov = has_mdat = has_track = False
    with path.open("rb") as fh:
        pos = 0
        for _ in range(_MAX_TOP_LEVEL_BOXES):
            if pos >= size:
                break
            fh.seek(pos)
            header = fh.read(16)
            if len(header) < 8:
                return "truncated"
            box_size, box_type = struct.unpack(">I4s", header[:8])
            header_len = 8
            if box_size == 1:  # 64-bit size follows the type
                if len(header) < 16:
                    return "truncated"
                box_size = struct.unpack(">Q", header[8:16])[0]
                header_len = 16
            elif box_size == 0:  # box runs to the end of the file
                box_size = size - pos
            if box_size < header_len:
                return "truncated"
            if pos + box_size > size:
                # An upload cut short leaves the last box (usually 'mdat' or 'moov') incomplete.
                return "truncated"
            if box_type == b"mdat":
                has_mdat = True
            elif box_type == b"moov":
                has_moov = True
                has_track = has_track or _moov_has_track(fh, pos + header_len, pos + box_size)
            pos += box_size
    if has_mdat and not has_moov:
        # Writers put 'moov' after 'mdat' unless told otherwise, so a cut file has media but no index.
        return "truncated"
    if has_moov and not has_track:
        return "no_frames"
    return None


def _moov_has_track(fh: Any, start: int, end: int) -> bool:
    """True when a 'moov' box holds at least one 'trak' child."""
    pos = start
    while pos + 8 <= end:
        fh.seek(pos)
        child_size, child_type = struct.unpack(">I4s", fh.read(8))
        if child_type == b"trak":
            return True
        if child_size == 1:
            child_size = struct.unpack(">Q", fh.read(8))[0]
        if child_size < 8:
            return False
        pos += child_size
    return False


def _riff_problem(path: Path) -> str | None:
    """'truncated' when an AVI's RIFF chunks (or the chunks inside them) promise more bytes than the file holds."""
    size = path.stat().st_size
    with path.open("rb") as fh:
        pos = 0
        for _ in range(_MAX_TOP_LEVEL_BOXES):
            if pos >= size:
                return None
            fh.seek(pos)
            header = fh.read(12)
            if len(header) < 8:
                return "truncated"
            chunk_id, chunk_size = struct.unpack("<4sI", header[:8])
            end = pos + 8 + chunk_size
            if end > size:
                return "truncated"
            if chunk_id == b"RIFF":  # 'AVI ' first, then 'AVIX' extensions in files over 1 GB
                child = pos + 12
                while child + 8 <= end:
                    fh.seek(child)
                    child_id, child_size = struct.unpack("<4sI", fh.read(8))
                    if child + 8 + child_size > end:
                        # The header LIST, the 'movi' frame list or the index ends past the data present.
                        return "truncated"
                    child += 8 + child_size + (child_size & 1)
            pos = end + (chunk_size & 1)
    return None


def _avi_chunk_counts(path: Path) -> dict[int, int]:
    """Frame chunks per stream number in an AVI's 'movi' lists, zero-byte "repeat the previous frame" chunks included."""
    counts: dict[int, int] = {}
    size = path.stat().st_size
    with path.open("rb") as fh:

        def walk(start: int, end: int, depth: int) -> None:
            pos = start
            while pos + 8 <= end:
                fh.seek(pos)
                chunk_id, chunk_size = struct.unpack("<4sI", fh.read(8))
                if chunk_id in (b"RIFF", b"LIST") and depth < 3:
                    fh.seek(pos + 8)
                    kind = fh.read(4)
                    if kind in (b"AVI ", b"AVIX", b"movi", b"rec "):
                        walk(pos + 12, min(pos + 8 + chunk_size, end), depth + 1)
                elif depth >= 2 and chunk_id[:2].isdigit() and chunk_id[2:] in (b"db", b"dc"):
                    stream = int(chunk_id[:2])
                    counts[stream] = counts.get(stream, 0) + 1
                pos += 8 + chunk_size + (chunk_size & 1)

        walk(0, size, 0)
    return counts


def _truncated_error() -> ClipError:
    return ClipError(
        "truncated",
        "The file is incomplete: it ends before its last frame, probably because the copy or upload "
        "was interrupted. Copy the clip from the scanner again and re-upload it.",
    )


def _unsupported_codec_error(detail: str = "") -> ClipError:
    return ClipError(
        "unsupported_codec",
        "The video could not be decoded"
        + (f" ({detail})" if detail else "")
        + ". Re-export it from the scanner as an H.264 MP4 (or send the DICOM export) and upload it again.",
    )


def _open_container(path: str, threads: int | None = None) -> av.container.InputContainer:
    """Open a file with FFmpeg's demuxers, read as a plain file (the 'file:' protocol, never 'concat:' and the like).

    Its video decoder decodes frames on one thread per core this process may use, as OpenCV's FFmpeg
    backend does; frames still leave in order. FFmpeg's own default is a thread more than the cores, which
    decoded a 900-frame clip 20% slower on two cores (bench/bench_extraction.py); `threads` caps them for a
    read that runs beside others. (Set on the codec context before the first decode opens it.)
    """
    container = av.open(f"file:{path}", mode="r")
    for stream in container.streams.video:
        stream.codec_context.thread_type = "AUTO"
        stream.codec_context.thread_count = threads or available_cpus()
    return container


def _decoded_frames(container: av.container.InputContainer, stream: av.VideoStream) -> Iterator[av.VideoFrame]:
    """Decode a stream from the container's current position, frames in presentation order."""
    for packet in container.demux(stream):
        # FFmpeg skips AVI's zero-byte "repeat" chunks; an empty packet with a timestamp would end the decoder.
        if packet.size == 0 and packet.dts is not None:
            continue
        yield from packet.decode()


def _to_array(frame: av.VideoFrame, grey: bool, reformatter: VideoReformatter) -> np.ndarray:
    """A decoded frame as 2-D grey or BGR uint8, converted by a reformatter kept for the whole read.

    (A frame's own to_ndarray builds a fresh scaler context each time, about ten times slower.)
    """
    converted = reformatter.reformat(frame, format="gray" if grey else "bgr24")
    return np.ascontiguousarray(converted.to_ndarray())


class VideoReader(ClipReader):
    """MP4, AVI or MOV clip decoded with PyAV (FFmpeg); frames counted and timed from the stream, not its header.

    Variable-frame-rate files (AVI exports store a zero-byte chunk for each tick that repeats the previous
    frame) are read with their stored frames only, each at its own presentation time.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        container: str | None = None,
        max_width: int = 4096,
        max_height: int = 4096,
        max_frames: int = 10_000,
    ) -> None:
        self._path = os.path.abspath(os.fspath(path))
        self._open_reads: set[_Decoding] = set()  # one per read in progress (see split)
        self._seekable: bool | None = None  # whether a read can start at a later keyframe (see split)
        file_path = Path(self._path)
        if container is None:
            with file_path.open("rb") as fh:
                container = _sniff_video_container(fh.read(16))
            if container is None:
                raise ClipError(
                    "not_a_clip",
                    "The file is not an MP4, AVI or MOV video. Upload the clip as exported by the scanner.",
                )
        problem = _riff_problem(file_path) if container == "avi" else _iso_box_problem(file_path)
        if problem == "truncated":
            raise _truncated_error()

        try:
            demuxer = _open_container(self._path)
        except av.FFmpegError as exc:
            if problem == "no_frames":
                raise _no_frames_error() from exc
            raise _unsupported_codec_error() from exc
        codec = ""
        try:
            if not demuxer.streams.video:
                raise _no_frames_error()
            stream = demuxer.streams.video[0]
            codec = stream.codec_context.name or ""
            width, height = int(stream.codec_context.width or 0), int(stream.codec_context.height or 0)
            if width <= 0 or height <= 0:
                raise _unsupported_codec_error(f"codec {codec!r}" if codec else "")
            _check_dimensions(width, height, max_width, max_height)
            header_count = int(stream.frames or 0)
            if container == "avi" and header_count > _avi_chunk_counts(file_path).get(stream.index, 0):
                # Each frame of an AVI, stored or repeated, has its chunk; fewer chunks than the header
                # promises means the end of the frame list is missing.
                raise _truncated_error()
            stamps = self._presentation_stamps(demuxer, stream, max_frames)
        except av.FFmpegError as exc:
            raise _unsupported_codec_error(f"codec {codec!r}" if codec else "") from exc
        finally:
            demuxer.close()
        if not stamps:
            raise _no_frames_error()
        frame_count = len(stamps)
        self._stamps = stamps

        # Decoding the first, middle and last frames checks the stream is decodable to its end and
        # decides grey or colour; a clip that turns colour elsewhere (e.g. Doppler switched on
        # mid-sweep) is still read as grey, which the B-mode crop tolerates.
        samples = self._open_time_samples(sorted({0, frame_count // 2, frame_count - 1}), codec)
        times = self._frame_times(stamps, self._time_base)
        self.info = ClipInfo(
            format="video",
            container=container,
            frame_count=frame_count,
            fps=self._mean_rate(times, self._average_rate),
            width=width,
            height=height,
            is_grey=all(_is_grey_bgr(f) for f in samples),
            pixel_spacing_mm=None,  # plain video carries no calibration; see spacing_from_two_points
            frame_times_s=times,
        )

    def _presentation_stamps(self, demuxer: av.container.InputContainer, stream: av.VideoStream,
                             max_frames: int) -> list[int | None]:
        """Each stored frame's presentation timestamp in stream ticks, in presentation order (None: unknown)."""
        self._time_base = stream.time_base
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        self._average_rate = float(rate) if rate else None
        stamps: list[int | None] = []
        keyframes: set[int] = set()
        all_pts = True
        for packet in demuxer.demux(stream):
            if packet.size == 0 or packet.is_discard:
                # The demuxer's end-of-stream marker, a "repeat the previous frame" chunk, or a packet an
                # edit list cuts (decoded for reference only, never shown).
                continue
            stamps.append(packet.pts if packet.pts is not None else packet.dts)
            all_pts = all_pts and packet.pts is not None
            if packet.is_keyframe and stamps[-1] is not None:
                keyframes.add(stamps[-1])
            if len(stamps) > max_frames:
                _check_frame_count(len(stamps), max_frames)
        # A read may start at a keyframe other than the first (see split), and frames be known by their
        # time, only where each frame is shown in the order it is decoded, at its own recorded time: no
        # B-frames (which may refer across a keyframe, and which AVI, having no presentation times, leaves
        # FFmpeg to stamp in decoding order), every packet with a presentation time, those times increasing.
        self._in_decoding_order = (not stream.codec_context.has_b_frames and all_pts
                                   and all(a < b for a, b in zip(stamps, stamps[1:])))
        self._keyframe_indices = ([i for i, stamp in enumerate(stamps) if stamp in keyframes]
                                  if self._in_decoding_order else [0])
        if all(s is not None for s in stamps):
            return sorted(stamps)  # packets arrive in decoding order; B-frames are shown after later packets
        return stamps

    @staticmethod
    def _frame_times(stamps: list[int | None], time_base: Any) -> tuple[float, ...] | None:
        """Seconds from the first frame, exact from the stream's ticks; None when a frame has no timestamp."""
        if not stamps or time_base is None or any(s is None for s in stamps):
            return None
        first = stamps[0]
        return tuple(float((s - first) * time_base) for s in stamps)

    @staticmethod
    def _mean_rate(times: tuple[float, ...] | None, header_rate: float | None) -> float | None:
        """Frames per second over the clip (the nominal rate when only one frame or no timestamps)."""
        if times is not None and len(times) > 1 and times[-1] > 0:
            return (len(times) - 1) / times[-1]
        return header_rate if header_rate and math.isfinite(header_rate) and header_rate > 0 else None

    def _open_time_samples(self, indices: list[int], codec: str) -> list[np.ndarray]:
        """Decode a few frames as BGR at open time; a frame the stream cannot deliver means a damaged end."""
        frames = []
        for position, index in enumerate(indices):
            try:
                frame = self._decode_at(index)
            except av.FFmpegError as exc:
                if position == 0:
                    raise _unsupported_codec_error(f"codec {codec!r}" if codec else "") from exc
                raise _truncated_error() from exc
            if frame is None:
                if position == 0:
                    raise _unsupported_codec_error(f"codec {codec!r}" if codec else "")
                raise _truncated_error()
            frames.append(frame)
        return frames

    def _decode_at(self, index: int) -> np.ndarray | None:
        """Decode one frame as BGR, seeking to the keyframe before it when its timestamp is known."""
        demuxer = _open_container(self._path)
        try:
            stream = demuxer.streams.video[0]
            target = self._stamps[index]
            if index > 0 and target is not None:
                try:
                    demuxer.seek(target, stream=stream, backward=True, any_frame=False)
                except av.FFmpegError:
                    demuxer.seek(0)  # no index to seek with: decode from the start
                for frame in _decoded_frames(demuxer, stream):
                    if frame.pts is None or frame.pts > target:
                        break
                    if frame.pts == target:
                        return _to_array(frame, False, VideoReformatter())
                demuxer.seek(0)  # a seek that landed past the frame: decode from the start
            for position, frame in enumerate(_decoded_frames(demuxer, stream)):
                if position == index:
                    return _to_array(frame, False, VideoReformatter())
            return None
        finally:
            demuxer.close()

    def split(self, indices: Sequence[int], parts: int) -> list[list[int]]:
        """Groups starting at keyframes, each ending about where the next begins, so each takes about the same
        decoding; one group for streams decoded from the start only (see _presentation_stamps) and for files
        whose keyframes cannot be reached by seeking (checked once, on the second group's keyframe)."""
        wanted = self._wanted(indices)
        if parts < 2 or len(self._keyframe_indices) < 2 or not wanted:
            return [wanted] if wanted else []
        # Part q decodes from the last keyframe at or before q/parts of the way to the last wanted frame.
        starts = sorted({max((k for k in self._keyframe_indices if k <= wanted[-1] * q / parts), default=0)
                         for q in range(parts)})
        groups: list[list[int]] = []
        for first, following in zip(starts, [*starts[1:], self.info.frame_count]):
            group = [i for i in wanted if first <= i < following]
            if group:
                groups.append(group)
        if len(groups) > 1 and self._seekable is None:
            # Every part that cannot seek would decode from the first frame: more work than one pass.
            probe = _Decoding(self._path, 1)
            try:
                self._seekable = self._seek(probe, self._start_of(groups[1][0])) is not None
            finally:
                probe.close()
        return groups if self._seekable else [wanted]

    def _start_of(self, index: int) -> int:
        """The keyframe a read of `index` may start at: the last at or before it (0 when none may be used)."""
        return max((k for k in self._keyframe_indices if k <= index), default=0)

    def read(self, indices: Sequence[int], *, decoder_threads: int | None = None) -> Iterator[tuple[np.ndarray, int]]:
        """Decode sequentially, converting only requested frames; ClipError('truncated') if the stream ends early.

        Decoding starts at the keyframe before the first wanted frame where the stream allows it (see split),
        else at the first frame. Several reads may run at once, from different threads; close() waits for
        each to finish the frame it is decoding.
        """
        wanted = self._wanted(indices)
        if not wanted:
            return
        # Sequential decoding from the keyframe before the first wanted frame to the last wanted one,
        # converting (YUV -> grey or BGR) only the wanted ones; seeking to each would re-decode from the
        # previous keyframe for each target, slower at the spacings extraction uses.
        decoding, position = self._begin(self._start_of(wanted[0]), decoder_threads)
        timed = self._in_decoding_order
        try:
            reformatter = VideoReformatter()
            for index in wanted:
                while True:
                    try:
                        frame = decoding.next_frame()
                    except (StopIteration, av.FFmpegError) as exc:
                        raise _truncated_error() from exc
                    current, position = position, position + 1
                    if timed and frame.pts is not None:
                        # Frames are known by their time where the stream allows (see _presentation_stamps):
                        # a frame the decoder drops cannot shift the ones after it onto the wrong indices.
                        if frame.pts > self._stamps[index]:
                            raise _unsupported_codec_error(f"frame {index + 1} could not be decoded")
                        if frame.pts == self._stamps[index]:
                            break
                    elif current == index:
                        break
                yield _to_array(frame, self.info.is_grey, reformatter), index
        finally:
            decoding.close()
            self._open_reads.discard(decoding)

    def _begin(self, start: int, threads: int | None) -> tuple[_Decoding, int]:
        """A decoding whose next frame is the keyframe at index `start` where a seek reaches it, else the first
        frame; with the index of that next frame."""
        decoding = _Decoding(self._path, threads)
        self._open_reads.add(decoding)
        if start > 0:
            first = self._seek(decoding, start)
            if first is not None:
                decoding.frames = itertools.chain([first], decoding.frames)
                return decoding, start
            decoding.close()
            self._open_reads.discard(decoding)
            decoding = _Decoding(self._path, threads)  # decode from the start after all
            self._open_reads.add(decoding)
        return decoding, 0

    def _seek(self, decoding: _Decoding, keyframe: int) -> av.VideoFrame | None:
        """Seek to the keyframe at index `keyframe` and decode it: the frame, or None when the seek lands
        elsewhere or the frame is not one the decoder can show on its own. The container's keyframe flags are
        its writer's claim (an MP4 without a sync-sample table calls every frame a keyframe); the decoder's
        key_frame is what makes starting there exact."""
        target = self._stamps[keyframe]
        try:
            decoding.demuxer.seek(target, stream=decoding.stream, backward=True, any_frame=False)
            frame = decoding.next_frame()
        except (av.FFmpegError, StopIteration):
            return None
        return frame if frame.pts == target and frame.key_frame else None

    def close(self) -> None:
        """Release the decoders of unfinished reads (waiting for each to finish the frame it is decoding)."""
        for decoding in list(self._open_reads):
            decoding.close()
        self._open_reads.clear()


class _Decoding:
    """One read's demuxer and decoded frames. close() may come from another thread (VideoReader.close): it
    waits for the frame being decoded, and the read then stops instead of decoding from a closed demuxer."""

    def __init__(self, path: str, threads: int | None) -> None:
        self.demuxer = _open_container(path, threads)
        self.stream = self.demuxer.streams.video[0]
        self.frames: Iterator[av.VideoFrame] = _decoded_frames(self.demuxer, self.stream)
        self._lock = threading.Lock()
        self._closed = False

    def next_frame(self) -> av.VideoFrame:
        with self._lock:
            if self._closed:
                raise RuntimeError("the clip reader was closed while a read was in progress")
            return next(self.frames)

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self.demuxer.close()


def _no_frames_error() -> ClipError:
    return ClipError(
        "no_frames",
        "The file contains no image frames. Check that you exported the cine clip (not a report or an "
        "empty recording) and upload it again.",
    )


# --------------------------------------------------------------------------------------------------
# DICOM (multi-frame ultrasound) through pydicom
# --------------------------------------------------------------------------------------------------


def _text(value: Any) -> str | None:
    """A DICOM string value (possibly multi-valued) as one trimmed string, or None when empty."""
    if value is None:
        return None
    if isinstance(value, (list, tuple, MultiValue)):
        parts = [str(v).strip() for v in value if str(v).strip()]
        return ", ".join(parts) or None
    text = str(value).strip()
    return text or None


def _cm_to_mm(value: float) -> float:
    """Convert centimetres to millimetres on the decimal value written in the file, avoiding binary drift."""
    return float(Decimal(repr(float(value))) * 10)


def _region_spacing(region: Dataset) -> tuple[float, float] | None:
    """(row, col) mm/px from one ultrasound region when it is calibrated in cm."""
    if region.get("PhysicalUnitsXDirection") != _UNITS_CM or region.get("PhysicalUnitsYDirection") != _UNITS_CM:
        return None
    dx, dy = region.get("PhysicalDeltaX"), region.get("PhysicalDeltaY")
    if dx is None or dy is None:
        return None
    dx, dy = abs(float(dx)), abs(float(dy))  # sign only gives the axis direction
    if not (math.isfinite(dx) and math.isfinite(dy) and dx > 0 and dy > 0):
        return None
    return (_cm_to_mm(dy), _cm_to_mm(dx))


def _region_rank(region: Dataset) -> tuple[int, int, int]:
    """Sort key preferring 2-D tissue regions, then the largest one (the B-mode image the nerve sits in)."""
    try:
        area = (int(region.RegionLocationMaxX1) - int(region.RegionLocationMinX0)) * (
            int(region.RegionLocationMaxY1) - int(region.RegionLocationMinY0)
        )
    except (AttributeError, TypeError, ValueError):
        area = 0
    return (
        int(region.get("RegionSpatialFormat") == _SPATIAL_FORMAT_2D),
        int(region.get("RegionDataType") == _DATA_TYPE_TISSUE),
        area,
    )


def _dicom_spacing_and_frequency(ds: Dataset) -> tuple[tuple[float, float] | None, float | None]:
    """Pixel spacing (row, col) in mm and transducer frequency in MHz from a DICOM header."""
    regions = [r for r in ds.get("SequenceOfUltrasoundRegions", []) or []]
    calibrated = sorted((r for r in regions if _region_spacing(r) is not None), key=_region_rank, reverse=True)
    spacing = _region_spacing(calibrated[0]) if calibrated else None
    if spacing is None and "PixelSpacing" in ds:
        try:
            row, col = (float(v) for v in ds.PixelSpacing)
            if math.isfinite(row) and math.isfinite(col) and row > 0 and col > 0:
                spacing = (row, col)
        except (TypeError, ValueError):
            spacing = None
    frequency_khz = None
    for item in [*calibrated, *regions, ds]:
        try:
            frequency_khz = float(item.get("TransducerFrequency") or 0) or None  # UL, in kHz
        except (TypeError, ValueError):
            frequency_khz = None  # a malformed value only loses the metadata, not the clip
        if frequency_khz:
            break
    return spacing, (frequency_khz / 1000.0 if frequency_khz else None)


def _dicom_fps(ds: Dataset) -> float | None:
    """Frame rate from Frame Time (ms), Frame Time Vector, Cine Rate or Recommended Display Frame Rate."""
    try:
        frame_time = float(ds.get("FrameTime") or 0)
        if frame_time > 0:
            return 1000.0 / frame_time
        vector = [float(v) for v in (ds.get("FrameTimeVector") or [])][1:]  # first entry is 0 by definition
        if vector and sum(vector) > 0:
            return 1000.0 * len(vector) / sum(vector)
        for keyword in ("CineRate", "RecommendedDisplayFrameRate"):
            rate = float(ds.get(keyword) or 0)
            if rate > 0:
                return rate
    except (TypeError, ValueError):
        return None
    return None


# Ultrasound Image and Ultrasound Multi-frame Image Storage, current and retired (DICOM PS3.4 B.5).
ULTRASOUND_SOP_CLASSES = frozenset(
    {
        "1.2.840.10008.5.1.4.1.1.6.1",
        "1.2.840.10008.5.1.4.1.1.3.1",
        "1.2.840.10008.5.1.4.1.1.6",
        "1.2.840.10008.5.1.4.1.1.3",
    }
)
_MODALITY_NAMES = {"CT": "a CT image", "MR": "an MR image", "CR": "a radiograph", "DX": "a radiograph",
                   "MG": "a mammogram", "NM": "a nuclear medicine image", "PT": "a PET image",
                   "XA": "an angiogram", "OT": "an image of another kind", "SR": "a structured report",
                   "SEG": "a segmentation", "RTDOSE": "a radiotherapy dose", "RTPLAN": "a radiotherapy plan"}


def _require_ultrasound(ds: Dataset) -> None:
    """Refuse DICOM that is not ultrasound: Modality must be US, or the SOP class an ultrasound one.

    A CT or MR file carries a pixel spacing too; accepting it would size the 15 mm crop on an image of
    something other than the wrist's ultrasound.
    """
    modality = _text(ds.get("Modality"))
    sop_class = str(ds.get("SOPClassUID") or getattr(getattr(ds, "file_meta", None), "MediaStorageSOPClassUID", "")
                    or "").strip()
    if (modality or "").upper() == "US" or sop_class in ULTRASOUND_SOP_CLASSES:
        return
    if modality:
        what = _MODALITY_NAMES.get(modality.upper(), f"of modality {modality}")
        detail = f"This DICOM file is {what} (Modality {modality}), not ultrasound."
    else:
        detail = "This DICOM file does not say it is ultrasound (no Modality US nor an ultrasound SOP class)."
    raise ClipError(
        "not_ultrasound",
        f"{detail} Only ultrasound clips of the wrist can be used; export the ultrasound cine loop from "
        "the scanner or PACS and upload that file.",
    )


def _dicom_frame_times(ds: Dataset, frame_count: int) -> tuple[float, ...] | None:
    """Seconds from the first frame from a Frame Time Vector (ms since the previous frame, first entry 0)."""
    try:
        vector = [float(v) for v in (ds.get("FrameTimeVector") or [])]
    except (TypeError, ValueError):
        return None
    if len(vector) != frame_count or not all(math.isfinite(v) and v >= 0 for v in vector):
        return None
    times, elapsed_ms = [], 0.0
    for step in [0.0, *vector[1:]]:
        elapsed_ms += step
        times.append(elapsed_ms / 1000.0)
    return tuple(times)


def _bad_dicom_error(detail: str) -> ClipError:
    return ClipError(
        "bad_dicom",
        f"The DICOM file could not be read ({detail}). Export the clip from the scanner or PACS again "
        "and upload the new file.",
    )


class DicomReader(ClipReader):
    """Multi-frame ultrasound DICOM: grey or colour frames, calibration from the ultrasound regions."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        force: bool = False,
        max_width: int = 4096,
        max_height: int = 4096,
        max_frames: int = 10_000,
    ) -> None:
        self._path = os.path.abspath(os.fspath(path))
        try:
            # Deferring large elements keeps the pixel data on disk; frames are read one by one later.
            ds = pydicom.dcmread(self._path, force=force, defer_size="256 KB")
        except InvalidDicomError as exc:
            raise _bad_dicom_error("not a DICOM file") from exc
        except Exception as exc:  # pydicom raises many types on damaged headers
            raise _bad_dicom_error("the header is damaged") from exc
        if force and not any(k in ds for k in ("SOPClassUID", "Rows", "PixelData", "Modality")):
            # pydicom's force mode "parses" any bytes; without a single core attribute it was not DICOM.
            raise _bad_dicom_error("not a DICOM file")
        _require_ultrasound(ds)
        if "PixelData" not in ds:
            raise ClipError(
                "no_frames",
                "This DICOM file contains no image (no pixel data); it may be a report or a structured "
                "document. Export the ultrasound cine loop instead.",
            )
        try:
            rows, columns = int(ds.Rows), int(ds.Columns)
            samples = int(ds.get("SamplesPerPixel", 1))
            bits_allocated = int(ds.BitsAllocated)
            bits_stored = int(ds.get("BitsStored", bits_allocated))
            photometric = str(ds.PhotometricInterpretation).strip().upper()
            number_of_frames = ds.get("NumberOfFrames")
            frame_count = 1 if number_of_frames in (None, "") else int(number_of_frames)  # absent: single frame
        except Exception as exc:  # missing attributes, or values pydicom cannot convert (many error types)
            raise _bad_dicom_error("image attributes such as Rows, Columns or Bits Allocated are missing") from exc
        if frame_count <= 0:
            raise _no_frames_error()
        _check_dimensions(columns, rows, max_width, max_height)
        _check_frame_count(frame_count, max_frames)
        if samples not in (1, 3) or bits_allocated not in (8, 16):
            raise _unsupported_codec_error(f"{samples} samples of {bits_allocated} bits per pixel")

        self._ds = ds
        self._photometric = photometric
        self._samples = samples
        self._bits_stored = min(bits_stored, bits_allocated)
        self._source: str | Dataset = self._path
        transfer_syntax = self._transfer_syntax(ds)
        if transfer_syntax.is_compressed:
            try:
                available = get_decoder(transfer_syntax).is_available
            except NotImplementedError:
                available = False
            if not available:
                raise _unsupported_codec_error(f"compression {transfer_syntax.name!r} is not supported here")
        elif not transfer_syntax.is_deflated:  # deflated files have no file offsets to compare with
            # YBR_FULL_422 stores two bytes per pixel (Y for each, Cb/Cr shared by pairs) instead of three.
            per_pixel = 2 if photometric == "YBR_FULL_422" else samples
            self._check_native_length(ds, rows * columns * per_pixel * frame_count * bits_allocated // 8)

        first = self._decode_one(0, code="bad_dicom")
        # A damaged or cut-off end of the pixel data only shows when the last frame is decoded.
        last = self._decode_one(frame_count - 1, code="truncated") if frame_count > 1 else first
        grey = photometric in ("MONOCHROME1", "MONOCHROME2")
        if not grey:
            middle = self._decode_one(frame_count // 2, code="truncated")
            grey = all(_is_grey_bgr(f) for f in (first, middle, last))

        spacing, frequency_mhz = _dicom_spacing_and_frequency(ds)
        self.info = ClipInfo(
            format="dicom",
            container="dicom",
            frame_count=frame_count,
            fps=_dicom_fps(ds),
            width=columns,
            height=rows,
            is_grey=grey,
            pixel_spacing_mm=spacing,
            manufacturer=_text(ds.get("Manufacturer")),
            model_name=_text(ds.get("ManufacturerModelName")),
            institution_name=_text(ds.get("InstitutionName")),
            transducer=_text(ds.get("TransducerData")),
            frequency_mhz=frequency_mhz,
            frame_times_s=_dicom_frame_times(ds, frame_count),
        )

    def _transfer_syntax(self, ds: Dataset) -> UID:
        """The file's transfer syntax; files without a meta header get one from how pydicom parsed them."""
        meta = getattr(ds, "file_meta", None)
        if meta is not None and "TransferSyntaxUID" in meta:
            return UID(meta.TransferSyntaxUID)
        # Headerless (raw) datasets cannot be decoded from the path, so decode from a fully loaded copy.
        loaded = pydicom.dcmread(self._path, force=True)
        implicit = loaded.original_encoding[0] if loaded.original_encoding else True
        loaded.file_meta = FileMetaDataset()
        loaded.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian
        self._source = loaded
        return UID(loaded.file_meta.TransferSyntaxUID)

    def _check_native_length(self, ds: Dataset, expected: int) -> None:
        """Refuse uncompressed pixel data shorter than Rows × Columns × frames needs."""
        element = ds.get_item("PixelData", keep_deferred=True)
        if isinstance(element, RawDataElement) and element.value is None:
            on_disk = os.path.getsize(self._path) - element.value_tell
            available = min(element.length, on_disk)
        else:
            value = element.value if element is not None else b""
            available = len(value or b"")
        if available < expected:
            raise _truncated_error()

    def _decode_one(self, index: int, *, code: str) -> np.ndarray:
        """Decode one frame at open time, mapping decoder failures to a ClipError."""
        try:
            return next(self._frames([index]))
        except ClipError:
            raise
        except Exception as exc:  # decoders raise ValueError, RuntimeError, EOFError...
            if code == "truncated":
                raise _truncated_error() from exc
            raise _bad_dicom_error("the first frame cannot be decoded") from exc

    def _frames(self, indices: list[int]) -> Iterator[np.ndarray]:
        """Decoded frames as uint8 RGB (colour) or 2-D grey, before the grey/BGR decision."""
        # as_rgb turns YBR_FULL / YBR_FULL_422 / YBR_ICT / YBR_RCT into RGB, whatever the compression.
        for arr in iter_pixels(self._source, indices=indices, as_rgb=True):
            yield self._to_uint8(arr)

    def _to_uint8(self, arr: np.ndarray) -> np.ndarray:
        """Map a decoded frame to uint8: palette to RGB, deeper pixels scaled, MONOCHROME1 inverted."""
        if self._photometric == "PALETTE COLOR":
            arr = apply_color_lut(arr, self._ds)
            if arr.dtype != np.uint8:
                arr = (arr.astype(np.uint32) >> 8).astype(np.uint8)  # LUT entries are 16-bit
            return np.ascontiguousarray(arr)
        if arr.dtype != np.uint8:
            arr = self._scale_to_uint8(arr)
        if self._photometric == "MONOCHROME1":
            arr = 255 - arr  # MONOCHROME1 shows low values white; the models expect MONOCHROME2
        return np.ascontiguousarray(arr)

    def _scale_to_uint8(self, arr: np.ndarray) -> np.ndarray:
        """Scale >8-bit pixels by the file's window, else its stored bit range (fixed per clip: no flicker)."""
        values = arr.astype(np.float64)
        centre, width = self._ds.get("WindowCenter"), self._ds.get("WindowWidth")
        if self._samples == 1 and centre is not None and width is not None:
            centre = float(centre[0] if isinstance(centre, MultiValue) else centre)
            width = float(width[0] if isinstance(width, MultiValue) else width)
            low, high = centre - width / 2.0, centre + width / 2.0
        elif arr.dtype.kind == "i":
            low, high = -(2.0 ** (self._bits_stored - 1)), 2.0 ** (self._bits_stored - 1) - 1
        else:
            low, high = 0.0, 2.0**self._bits_stored - 1
        if high <= low:
            high = low + 1.0
        scaled = np.clip((values - low) / (high - low), 0.0, 1.0) * 255.0
        return np.rint(scaled).astype(np.uint8)

    def read(self, indices: Sequence[int], *, decoder_threads: int | None = None) -> Iterator[tuple[np.ndarray, int]]:
        """Decode the requested frames only, as 2-D grey or BGR uint8 (pydicom's decoders have no threads)."""
        wanted = self._wanted(indices)
        if not wanted:
            return
        decoded = self._frames(wanted)
        for index in wanted:
            try:
                frame = next(decoded)
            except StopIteration:
                raise _truncated_error() from None
            except ClipError:
                raise
            except Exception as exc:  # decoders raise ValueError, RuntimeError, EOFError...
                raise _truncated_error() from exc
            if frame.ndim == 3:
                frame = _rgb_to_grey(frame) if self.info.is_grey else np.ascontiguousarray(frame[..., ::-1])
            yield frame, index


# --------------------------------------------------------------------------------------------------
# Entry points
# --------------------------------------------------------------------------------------------------


def _looks_like_headerless_dicom(head: bytes) -> bool:
    """True for DICOM written without the 128-byte preamble: it opens with a group 0002 or 0008 tag."""
    return len(head) >= 8 and head[:2] in (b"\x02\x00", b"\x08\x00")


def _not_a_clip_error(head: bytes) -> ClipError:
    for offset, magic, what in _KNOWN_OTHER_FORMATS:
        if head[offset : offset + len(magic)] == magic:
            return ClipError(
                "not_a_clip",
                f"This file is {what}, not an ultrasound clip. Upload the clip as an MP4, AVI or MOV "
                "video or as a DICOM file.",
            )
    return ClipError(
        "not_a_clip",
        "This file is not an ultrasound clip we can read. Upload the clip as an MP4, AVI or MOV video "
        "or as a DICOM file, as exported by the scanner.",
    )


def open_clip(
    path: str | os.PathLike[str],
    *,
    max_width: int = 4096,
    max_height: int = 4096,
    max_frames: int = 10_000,
) -> ClipReader:
    """Open a video or DICOM clip chosen by its content (not its name) and validate it; raise ClipError otherwise."""
    file_path = Path(path)
    with file_path.open("rb") as fh:
        head = fh.read(132)
    if not head:
        raise ClipError("not_a_clip", "The file is empty. Upload the clip again; the copy may have failed.")
    limits = {"max_width": max_width, "max_height": max_height, "max_frames": max_frames}
    if head[128:132] == b"DICM":
        return DicomReader(file_path, force=False, **limits)
    container = _sniff_video_container(head)
    if container is not None:
        return VideoReader(file_path, container=container, **limits)
    if _looks_like_headerless_dicom(head) or file_path.suffix.lower() in DICOM_EXTENSIONS:
        return DicomReader(file_path, force=True, **limits)
    raise _not_a_clip_error(head)


def safe_filename(name: str) -> str:
    """Return the uploaded file's name normalised (NFC, trimmed, lower-case extension) or raise ClipError."""
    if not isinstance(name, str):
        raise TypeError("name must be a string")
    normalised = unicodedata.normalize("NFC", name).strip()
    if not normalised:
        raise ClipError(
            "bad_filename", "The file has no name. Rename it (for example clip01.mp4) and upload it again."
        )
    # Control and format characters include NUL and right-to-left overrides that disguise extensions.
    if any(unicodedata.category(ch).startswith("C") for ch in normalised):
        raise ClipError(
            "bad_filename",
            "The file name contains invisible or control characters. Rename it using letters, digits, "
            "spaces, dashes or underscores and upload it again.",
        )
    if "/" in normalised or "\\" in normalised or ":" in normalised or ".." in normalised:
        raise ClipError(
            "bad_filename",
            "The file name contains '/', '\\', ':' or '..', which are not allowed. Rename the file "
            "(for example clip01.mp4) and upload it again.",
        )
    if len(normalised.encode("utf-8")) > 255:
        raise ClipError("bad_filename", "The file name is too long. Shorten it and upload the file again.")
    stem, dot, extension = normalised.rpartition(".")
    if not dot:
        return normalised  # no extension: DICOM files exported from PACS are often named this way
    if not stem.strip():
        raise ClipError(
            "bad_filename", "The file name has an extension but no name. Rename it (for example clip01.mp4)."
        )
    suffix = "." + extension.lower()
    if extension.isascii() and extension.isdigit():
        # UID-named DICOM files (1.2.840.113619...) end in digits, which are not an extension.
        return normalised
    if suffix not in VIDEO_EXTENSIONS | DICOM_EXTENSIONS:
        raise ClipError(
            "unsupported_type",
            f"Files of type '{suffix}' are not accepted. Upload the clip as MP4, AVI, MOV or DICOM (.dcm).",
        )
    return f"{stem}{suffix}"
