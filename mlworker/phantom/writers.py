"""Write phantom clips as the files a site would upload (MP4/AVI video, ultrasound DICOM) plus their truth."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path
from typing import Any

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import ExplicitVRLittleEndian, PYDICOM_IMPLEMENTATION_UID, generate_uid

from mlworker.phantom.clip import PhantomClip

US_MULTIFRAME_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.3.1"  # Ultrasound Multi-frame Image Storage
_FOURCC = {".mp4": "mp4v", ".avi": "MJPG"}


def write_video(clip: PhantomClip, path: str | Path) -> Path:
    """Write the clip as .mp4 (mp4v) or .avi (MJPG) with grey replicated to BGR; verify the frame count."""
    import cv2  # the web process imports this module (demo) but never writes video in it

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in _FOURCC:
        raise ValueError(f"unsupported video suffix {path.suffix!r}; name the file *.mp4 or *.avi")
    n, h, w = clip.frames.shape
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*_FOURCC[suffix]), float(clip.fps), (w, h))
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot open a {_FOURCC[suffix]} writer for {path}; "
                           "check that this OpenCV build has video I/O (FFmpeg) support")
    try:
        for frame in clip.frames:
            writer.write(cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR))
    finally:
        writer.release()
    read_back = _count_frames(path)
    if read_back != n:
        raise RuntimeError(f"{path} reads back {read_back} frames instead of {n}; "
                           "the OpenCV/FFmpeg build may be broken, try the other container")
    return path


def _count_frames(path: Path) -> int:
    """Frames OpenCV actually decodes from a video (the header count can be approximate)."""
    import cv2

    cap = cv2.VideoCapture(str(path))
    try:
        count = 0
        while cap.grab():
            count += 1
        return count
    finally:
        cap.release()


def write_dicom(clip: PhantomClip, path: str | Path, *, manufacturer: str | None = None,
                model_name: str | None = None, institution_name: str | None = None, transducer: str | None = None,
                frequency_mhz: float | None = None, patient_id: str = "PHANTOM") -> Path:
    """Write an Ultrasound Multi-frame Image (Part 10) with region calibration in cm; pseudonymous patient.

    The scanner's identity (Manufacturer, ManufacturerModelName, InstitutionName, transducer, frequency)
    defaults to the clip's scanner profile; an argument overrides it. An empty institution is left out.
    """
    identity = clip.profile.dicom_identity()
    given = {"manufacturer": manufacturer, "model_name": model_name, "institution_name": institution_name,
             "transducer": transducer, "frequency_mhz": frequency_mhz}
    identity.update({key: value for key, value in given.items() if value is not None})
    path = Path(path)
    n, h, w = clip.frames.shape
    row_mm, col_mm = clip.pixel_spacing_mm
    # Deterministic UIDs: the same pixels and pseudonym always give the same instance.
    digest = hashlib.sha256(clip.frames.tobytes() + patient_id.encode()).hexdigest()

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = US_MULTIFRAME_SOP_CLASS
    meta.MediaStorageSOPInstanceUID = generate_uid(entropy_srcs=[digest, "instance"])
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID

    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = US_MULTIFRAME_SOP_CLASS
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = generate_uid(entropy_srcs=[digest, "study"])
    ds.SeriesInstanceUID = generate_uid(entropy_srcs=[digest, "series"])
    # Patient: pseudonym only, no name or birth date (type 2 attributes present but empty).
    ds.PatientName = patient_id
    ds.PatientID = patient_id
    ds.PatientBirthDate = ""
    ds.PatientSex = ""
    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = "synthetic phantom, no patient data"
    ds.StudyDate = ""
    ds.StudyTime = ""
    ds.ReferringPhysicianName = ""
    ds.StudyID = ""
    ds.AccessionNumber = ""
    ds.Modality = "US"
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    ds.Manufacturer = identity["manufacturer"]
    ds.ManufacturerModelName = identity["model_name"]
    if identity["institution_name"]:
        ds.InstitutionName = identity["institution_name"]
    ds.TransducerData = identity["transducer"]
    ds.ImageType = ["DERIVED", "SECONDARY"]
    ds.BodyPartExamined = "HAND"
    ds.LossyImageCompression = "00"

    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = h, w
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
    ds.PixelRepresentation = 0
    ds.NumberOfFrames = n
    ds.FrameTime = round(1000.0 / clip.fps, 6)  # ms
    ds.CineRate = int(round(clip.fps))
    ds.RecommendedDisplayFrameRate = int(round(clip.fps))
    ds.FrameIncrementPointer = (0x0018, 0x1063)  # Frame Time

    region = Dataset()
    region.RegionSpatialFormat = 1  # 2D tissue image
    region.RegionDataType = 1  # tissue
    region.RegionFlags = 0
    region.RegionLocationMinX0, region.RegionLocationMinY0 = 0, 0
    region.RegionLocationMaxX1, region.RegionLocationMaxY1 = w - 1, h - 1
    region.PhysicalUnitsXDirection = 3  # cm
    region.PhysicalUnitsYDirection = 3
    region.PhysicalDeltaX = float(col_mm) / 10.0
    region.PhysicalDeltaY = float(row_mm) / 10.0
    region.ReferencePixelX0, region.ReferencePixelY0 = 0, 0
    region.ReferencePixelPhysicalValueX, region.ReferencePixelPhysicalValueY = 0.0, 0.0
    region.TransducerFrequency = int(round(float(identity["frequency_mhz"]) * 1000))  # kHz
    ds.SequenceOfUltrasoundRegions = DicomSequence([region])

    ds.PixelData = np.ascontiguousarray(clip.frames, dtype=np.uint8).tobytes()
    ds["PixelData"].VR = "OB"
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def ground_truth(clip: PhantomClip) -> dict[str, Any]:
    """JSON-serialisable truth of a clip: per-frame outline, centre and CSA, spacing and nerve params."""
    params = dataclasses.asdict(clip.params)
    params["shape_harmonics"] = [list(h) for h in clip.params.shape_harmonics]
    n, h, w = clip.frames.shape
    return {
        "format": "cts-study-phantom-truth/1",
        "seed": clip.seed,
        "group": clip.params.group,
        "n_frames": int(n),
        "width": int(w),
        "height": int(h),
        "fps": float(clip.fps),
        "pixel_spacing_mm": [float(v) for v in clip.pixel_spacing_mm],
        "scanner_profile": dataclasses.asdict(clip.profile),
        "params": params,
        "frames": [
            {
                "index": i,
                "center_px": [float(v) for v in clip.centers[i]],
                "csa_mm2": float(clip.csa_mm2[i]),
                "outline_px": clip.outlines[i].astype(float).tolist(),
            }
            for i in range(n)
        ],
    }


def write_avi_with_repeats(frames: list[np.ndarray] | np.ndarray, ticks: list[int], total_ticks: int,
                           path: str | Path, *, fps: float = 30.0) -> Path:
    """Write an uncompressed AVI as variable-frame-rate scanners do: a chunk per tick of the nominal rate.

    Frame k (2-D grey or BGR) is stored at tick ticks[k]; every other tick up to total_ticks gets a
    zero-byte chunk meaning "the previous frame is still shown". The header's frame count is total_ticks,
    so the file promises more frames than it stores, as in the exports the study received.
    """
    import struct

    path = Path(path)
    if len(frames) != len(ticks) or not frames:
        raise ValueError("give one tick per frame, and at least one frame")
    if list(ticks) != sorted(set(ticks)) or ticks[0] != 0 or ticks[-1] >= total_ticks:
        raise ValueError("ticks must rise strictly from 0 and stay below total_ticks")
    h, w = frames[0].shape[:2]
    stride = (3 * w + 3) // 4 * 4  # DIB rows are padded to 4 bytes and stored bottom-up
    image_size = stride * h

    def dib(frame: np.ndarray) -> bytes:
        bgr = np.repeat(frame[:, :, None], 3, axis=2) if frame.ndim == 2 else frame
        padded = np.zeros((h, stride), np.uint8)
        padded[:, : 3 * w] = np.ascontiguousarray(bgr[::-1], np.uint8).reshape(h, 3 * w)
        return padded.tobytes()

    def chunk(fourcc: bytes, payload: bytes) -> bytes:
        return fourcc + struct.pack("<I", len(payload)) + payload + (b"\x00" if len(payload) & 1 else b"")

    def riff_list(kind: bytes, payload: bytes) -> bytes:
        return chunk(b"LIST", kind + payload)

    scale, rate = 1000, int(round(fps * 1000))
    avih = struct.pack("<10I4I", int(round(1e6 / fps)), 0, 0, 0x10, total_ticks, 0, 1, image_size, w, h, 0, 0, 0, 0)
    strh = struct.pack("<4s4sIHHIIIIIIIIhhhh", b"vids", b"DIB ", 0, 0, 0, 0, scale, rate, 0, total_ticks,
                       image_size, 0xFFFFFFFF, 0, 0, 0, w, h)
    strf = struct.pack("<IiiHHIIiiII", 40, w, h, 1, 24, 0, image_size, 0, 0, 0, 0)
    header = riff_list(b"hdrl", chunk(b"avih", avih) + riff_list(b"strl", chunk(b"strh", strh) + chunk(b"strf", strf)))

    stored = dict(zip(ticks, frames, strict=True))
    movi, index = bytearray(b"movi"), bytearray()
    for tick in range(total_ticks):
        payload = dib(stored[tick]) if tick in stored else b""
        offset = len(movi)  # idx1 offsets count from the 'movi' fourcc
        movi += chunk(b"00db", payload)
        index += struct.pack("<4sIII", b"00db", 0x10 if payload else 0, offset, len(payload))
    body = b"AVI " + header + chunk(b"LIST", bytes(movi)) + chunk(b"idx1", bytes(index))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    return path
