"""Clip readers: formats, metadata, grey detection, refusal of bad uploads, safe file names."""

from __future__ import annotations

import struct
from pathlib import Path

import cv2
import numpy as np
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.pixels import convert_color_space
from pydicom.uid import ExplicitVRLittleEndian, JPEGBaseline8Bit, JPEGLSLossless, generate_uid

from mlworker.media import readers
from mlworker.media.readers import (
    CLIP_ERROR_CODES,
    ClipError,
    DicomReader,
    VideoReader,
    open_clip,
    require_spacing,
    safe_filename,
)

US_MULTIFRAME = "1.2.840.10008.5.1.4.1.1.3.1"
W, H, N, FPS = 64, 48, 12, 25.0
BGR_COLOUR = (200, 50, 120)


def grey_frames(n: int = N, w: int = W, h: int = H) -> list[np.ndarray]:
    """Frames whose brightness encodes the frame number, plus a moving bright block."""
    frames = []
    for i in range(n):
        g = np.full((h, w), 20 + 15 * i, np.uint8)
        g[8:20, 2 * i : 2 * i + 12] = 250
        frames.append(g)
    return frames


def write_video(path: Path, fourcc: str, frames: list[np.ndarray], fps: float = FPS) -> Path:
    """Write frames (2-D grey or BGR) with OpenCV."""
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (w, h))
    assert writer.isOpened(), f"OpenCV cannot write {fourcc} here"
    for f in frames:
        writer.write(cv2.cvtColor(f, cv2.COLOR_GRAY2BGR) if f.ndim == 2 else f)
    writer.release()
    return path


def colour_frames(n: int = N) -> list[np.ndarray]:
    return [np.dstack([np.full((H, W), c, np.uint8) for c in BGR_COLOUR]) for _ in range(n)]


def dicom_dataset(
    pixels: np.ndarray | None,
    *,
    photometric: str = "MONOCHROME2",
    regions: list[Dataset] | None = None,
    frame_time_ms: float | None = 40.0,
) -> Dataset:
    """A multi-frame ultrasound dataset (explicit VR little endian) holding `pixels` (frames, rows, cols[, 3])."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = US_MULTIFRAME
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = US_MULTIFRAME
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "US"
    ds.Manufacturer = "Acme Medical"
    ds.ManufacturerModelName = "Sono 9"
    ds.TransducerData = ["L12-5", "", ""]
    if frame_time_ms is not None:
        ds.FrameTime = frame_time_ms
    ds.SequenceOfUltrasoundRegions = regions if regions is not None else [us_region(0.0125, 0.0071)]
    if pixels is not None:
        frames, rows, cols = pixels.shape[:3]
        ds.NumberOfFrames = frames
        ds.Rows, ds.Columns = rows, cols
        ds.SamplesPerPixel = 1 if pixels.ndim == 3 else 3
        if ds.SamplesPerPixel == 3:
            ds.PlanarConfiguration = 0
        ds.PhotometricInterpretation = photometric
        ds.BitsAllocated = ds.BitsStored = 8 * pixels.dtype.itemsize
        ds.HighBit = ds.BitsStored - 1
        ds.PixelRepresentation = 0
        ds.PixelData = pixels.tobytes()
    return ds


def us_region(delta_x_cm: float, delta_y_cm: float, *, units: int = 3, spatial_format: int = 1) -> Dataset:
    region = Dataset()
    region.RegionSpatialFormat = spatial_format
    region.RegionDataType = 1
    region.RegionLocationMinX0, region.RegionLocationMinY0 = 0, 0
    region.RegionLocationMaxX1, region.RegionLocationMaxY1 = W - 1, H - 1
    region.PhysicalUnitsXDirection = units
    region.PhysicalUnitsYDirection = units
    region.PhysicalDeltaX = delta_x_cm
    region.PhysicalDeltaY = delta_y_cm
    region.TransducerFrequency = 12000  # kHz
    return region


def write_dicom(path: Path, ds: Dataset, *, preamble: bool = True) -> Path:
    if preamble:
        ds.save_as(path, enforce_file_format=True)
    else:
        ds.save_as(path, implicit_vr=False, little_endian=True)
    return path


def grey_stack(n: int = 6) -> np.ndarray:
    return np.stack(grey_frames(n))


def clip_error(path: Path, **limits: int) -> ClipError:
    with pytest.raises(ClipError) as caught:
        open_clip(path, **limits)
    err = caught.value
    assert err.code in CLIP_ERROR_CODES
    assert err.message and str(err) == err.message
    return err


# --------------------------------------------------------------------------------------------------
# Video


@pytest.mark.parametrize(
    ("name", "fourcc", "container"),
    [("clip.mp4", "mp4v", "mp4"), ("clip.avi", "MJPG", "avi"), ("clip.mov", "mp4v", "mov")],
)
def test_video_formats_open_with_right_info_and_frames(tmp_path: Path, name: str, fourcc: str, container: str) -> None:
    written = grey_frames()
    path = write_video(tmp_path / name, fourcc, written)
    with open_clip(path) as reader:
        assert isinstance(reader, VideoReader)
        info = reader.info
        assert (info.format, info.container) == ("video", container)
        assert (info.frame_count, info.width, info.height) == (N, W, H)
        assert info.fps == pytest.approx(FPS)
        assert info.is_grey is True
        assert info.pixel_spacing_mm is None
        got = list(reader.read(range(N)))
    assert [i for _, i in got] == list(range(N))
    for (frame, i), expected in zip(got, written, strict=True):
        assert frame.dtype == np.uint8 and frame.shape == (H, W)
        # Lossy codecs, but each frame's brightness identifies it: a shifted index would be 15 levels off.
        assert abs(float(frame.mean()) - float(expected.mean())) < 4, f"frame {i} is not the frame written"


def test_colour_video_is_read_as_bgr(tmp_path: Path) -> None:
    path = write_video(tmp_path / "colour.avi", "MJPG", colour_frames())
    with open_clip(path) as reader:
        assert reader.info.is_grey is False
        frame, index = next(reader.read([3]))
    assert index == 3 and frame.shape == (H, W, 3)
    np.testing.assert_allclose(frame.reshape(-1, 3).mean(axis=0), BGR_COLOUR, atol=6)


def test_read_sorts_and_deduplicates_indices(tmp_path: Path) -> None:
    written = grey_frames()
    path = write_video(tmp_path / "clip.mp4", "mp4v", written)
    with open_clip(path) as reader:
        got = list(reader.read([7, 2, 7, 0]))
    assert [i for _, i in got] == [0, 2, 7]
    for frame, i in got:
        assert abs(float(frame.mean()) - float(written[i].mean())) < 4


def test_read_rejects_indices_outside_the_clip(tmp_path: Path) -> None:
    path = write_video(tmp_path / "clip.mp4", "mp4v", grey_frames())
    with open_clip(path) as reader, pytest.raises(IndexError):
        list(reader.read([0, N]))


def test_read_decodes_only_up_to_the_last_wanted_frame_and_converts_only_wanted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_video(tmp_path / "clip.mp4", "mp4v", grey_frames())
    reader = open_clip(path)
    counts = {"decoded": 0, "converted": 0}
    real_decoded, real_to_array = readers._decoded_frames, readers._to_array

    def counting_decoded(*args):  # noqa: ANN202 - a pass-through generator
        for frame in real_decoded(*args):
            counts["decoded"] += 1
            yield frame

    def counting_to_array(*args):  # noqa: ANN202
        counts["converted"] += 1
        return real_to_array(*args)

    monkeypatch.setattr(readers, "_decoded_frames", counting_decoded)
    monkeypatch.setattr(readers, "_to_array", counting_to_array)
    got = [i for _, i in reader.read([2, 5])]
    reader.close()
    assert got == [2, 5]
    assert counts == {"decoded": 6, "converted": 2}


def test_content_decides_the_format_not_the_name(tmp_path: Path) -> None:
    video = write_video(tmp_path / "clip.mp4", "mp4v", grey_frames())
    disguised = video.rename(tmp_path / "upload %d (1).dcm")
    with open_clip(disguised) as reader:
        assert (reader.info.format, reader.info.container) == ("video", "mp4")
    dicom = write_dicom(tmp_path / "tmpa1b2c3", dicom_dataset(grey_stack()))
    with open_clip(dicom) as reader:
        assert reader.info.format == "dicom"


# --------------------------------------------------------------------------------------------------
# DICOM


def test_dicom_opens_with_exact_spacing_and_metadata(tmp_path: Path) -> None:
    pixels = grey_stack()
    path = write_dicom(tmp_path / "us.dcm", dicom_dataset(pixels))
    with open_clip(path) as reader:
        assert isinstance(reader, DicomReader)
        info = reader.info
        assert (info.format, info.container) == ("dicom", "dicom")
        assert (info.frame_count, info.width, info.height) == (6, W, H)
        # 0.0125 cm per column and 0.0071 cm per row; 0.0071 * 10 in binary floats is 0.07100000000000001.
        assert info.pixel_spacing_mm == (0.071, 0.125)
        assert info.fps == pytest.approx(25.0)
        assert info.is_grey is True
        assert (info.manufacturer, info.model_name, info.transducer) == ("Acme Medical", "Sono 9", "L12-5")
        assert info.frequency_mhz == pytest.approx(12.0)
        got = list(reader.read(range(6)))
    for (frame, i), expected in zip(got, pixels, strict=True):
        assert frame.dtype == np.uint8 and frame.ndim == 2
        np.testing.assert_array_equal(frame, expected, err_msg=f"frame {i}")


def test_dicom_spacing_comes_from_the_region_calibrated_in_cm(tmp_path: Path) -> None:
    spectral = us_region(0.5, 0.2, units=4, spatial_format=3)  # seconds / Doppler trace: not a length
    bmode = us_region(0.0125, 0.0125)
    path = write_dicom(tmp_path / "us.dcm", dicom_dataset(grey_stack(), regions=[spectral, bmode]))
    with open_clip(path) as reader:
        assert reader.info.pixel_spacing_mm == (0.125, 0.125)


def test_dicom_falls_back_to_pixel_spacing_and_reports_missing_spacing(tmp_path: Path) -> None:
    ds = dicom_dataset(grey_stack(), regions=[])
    ds.PixelSpacing = [0.2, 0.1]
    with open_clip(write_dicom(tmp_path / "a.dcm", ds)) as reader:
        assert reader.info.pixel_spacing_mm == (0.2, 0.1)
        assert require_spacing(reader.info) == (0.2, 0.1)
    with open_clip(write_dicom(tmp_path / "b.dcm", dicom_dataset(grey_stack(), regions=[]))) as reader:
        assert reader.info.pixel_spacing_mm is None
        with pytest.raises(ClipError) as caught:
            require_spacing(reader.info)
    assert caught.value.code == "missing_spacing"


def test_rgb_dicom_with_grey_content_is_grey(tmp_path: Path) -> None:
    grey = grey_stack()
    rgb = np.repeat(grey[..., None], 3, axis=-1)
    with open_clip(write_dicom(tmp_path / "rgb.dcm", dicom_dataset(rgb, photometric="RGB"))) as reader:
        assert reader.info.is_grey is True
        frame, _ = next(reader.read([4]))
    np.testing.assert_array_equal(frame, grey[4])


def test_rgb_dicom_with_colour_is_read_as_bgr(tmp_path: Path) -> None:
    rgb = np.zeros((4, H, W, 3), np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 10, 100, 220
    rgb[:, 5:9, 5:9] = (255, 255, 0)
    with open_clip(write_dicom(tmp_path / "rgb.dcm", dicom_dataset(rgb, photometric="RGB"))) as reader:
        assert reader.info.is_grey is False
        frame, _ = next(reader.read([1]))
    np.testing.assert_array_equal(frame, rgb[1][..., ::-1])


def test_ybr_full_dicom_is_converted_to_bgr(tmp_path: Path) -> None:
    rgb = np.zeros((3, H, W, 3), np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 30, 160, 90
    ybr = convert_color_space(rgb, "RGB", "YBR_FULL")
    with open_clip(write_dicom(tmp_path / "ybr.dcm", dicom_dataset(ybr, photometric="YBR_FULL"))) as reader:
        assert reader.info.is_grey is False
        frame, _ = next(reader.read([2]))
    np.testing.assert_allclose(frame.astype(int), rgb[2][..., ::-1].astype(int), atol=2)


def test_monochrome1_is_inverted_to_monochrome2(tmp_path: Path) -> None:
    pixels = grey_stack(3)
    with open_clip(write_dicom(tmp_path / "m1.dcm", dicom_dataset(pixels, photometric="MONOCHROME1"))) as reader:
        frame, _ = next(reader.read([1]))
    np.testing.assert_array_equal(frame, 255 - pixels[1])


def test_sixteen_bit_grey_uses_the_window(tmp_path: Path) -> None:
    pixels = np.zeros((2, H, W), np.uint16)
    pixels[:, :, :16] = 1000  # below the window: black
    pixels[:, :, 16:32] = 2000  # window centre: mid grey
    pixels[:, :, 32:] = 4000  # above the window: white
    ds = dicom_dataset(pixels)
    ds.BitsStored, ds.HighBit = 12, 11
    ds.WindowCenter, ds.WindowWidth = 2000, 1000
    with open_clip(write_dicom(tmp_path / "w.dcm", ds)) as reader:
        frame, _ = next(reader.read([0]))
    assert frame.dtype == np.uint8
    assert (frame[0, 0], frame[0, 20], frame[0, 40]) == (0, 128, 255)


@pytest.mark.parametrize("name", ["headerless.dcm", "headerless.bin"])
def test_dicom_without_preamble_is_read(tmp_path: Path, name: str) -> None:
    pixels = grey_stack()
    path = write_dicom(tmp_path / name, dicom_dataset(pixels), preamble=False)
    assert path.read_bytes()[128:132] != b"DICM"
    with open_clip(path) as reader:
        assert reader.info.pixel_spacing_mm == (0.071, 0.125)
        frame, _ = next(reader.read([5]))
    np.testing.assert_array_equal(frame, pixels[5])


def test_jpeg_baseline_dicom_is_decoded(tmp_path: Path) -> None:
    pixels = grey_stack(4)
    ds = dicom_dataset(pixels)
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    ds.PixelData = encapsulate([cv2.imencode(".jpg", f, [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes() for f in pixels])
    ds["PixelData"].VR = "OB"
    with open_clip(write_dicom(tmp_path / "jpeg.dcm", ds)) as reader:
        frames = list(reader.read(range(4)))
    for (frame, i), expected in zip(frames, pixels, strict=True):
        assert np.abs(frame.astype(int) - expected.astype(int)).mean() < 3, f"frame {i}"


def test_dicom_with_unavailable_codec_is_refused(tmp_path: Path) -> None:
    pixels = grey_stack(2)
    ds = dicom_dataset(pixels)
    ds.file_meta.TransferSyntaxUID = JPEGLSLossless
    ds.PixelData = encapsulate([b"\xff\xd8" + bytes(64) for _ in pixels])
    ds["PixelData"].VR = "OB"
    assert clip_error(write_dicom(tmp_path / "jls.dcm", ds)).code == "unsupported_codec"


# --------------------------------------------------------------------------------------------------
# Refusals


def test_random_bytes_are_not_a_clip(tmp_path: Path) -> None:
    path = tmp_path / "clip.mp4"
    path.write_bytes(np.random.default_rng(7).integers(1, 255, 50_000, dtype=np.uint8).tobytes())
    assert clip_error(path).code == "not_a_clip"


def test_text_file_renamed_mp4_is_not_a_clip(tmp_path: Path) -> None:
    path = tmp_path / "clip.mp4"
    path.write_text("Patient 12, right wrist, CSA 11 mm2\n" * 50)
    assert clip_error(path).code == "not_a_clip"


def test_empty_file_and_still_image_are_not_clips(tmp_path: Path) -> None:
    empty = tmp_path / "clip.mp4"
    empty.write_bytes(b"")
    assert clip_error(empty).code == "not_a_clip"
    png = tmp_path / "still.mp4"
    png.write_bytes(cv2.imencode(".png", grey_frames(1)[0])[1].tobytes())
    err = clip_error(png)
    assert err.code == "not_a_clip" and "PNG" in err.message


@pytest.mark.parametrize(("name", "fourcc"), [("clip.mp4", "mp4v"), ("clip.avi", "MJPG"), ("clip.mov", "mp4v")])
def test_video_cut_in_half_is_truncated(tmp_path: Path, name: str, fourcc: str) -> None:
    path = write_video(tmp_path / name, fourcc, grey_frames())
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    assert clip_error(path).code == "truncated"


def test_avi_with_consistent_sizes_but_missing_frames_is_truncated(tmp_path: Path) -> None:
    # Cut inside the frame list and patch the RIFF and 'movi' sizes to match, as a careless repair tool
    # would: only the frame count in the stream header, checked by decoding the last frame, shows the loss.
    path = write_video(tmp_path / "clip.avi", "MJPG", grey_frames())
    data = bytearray(path.read_bytes())
    movi = data.index(b"movi") - 8
    movi_size = struct.unpack_from("<I", data, movi + 4)[0]
    cut = movi + 8 + movi_size // 2
    data = data[:cut]
    struct.pack_into("<I", data, 4, cut - 8)
    struct.pack_into("<I", data, movi + 4, cut - movi - 8)
    path.write_bytes(bytes(data))
    assert clip_error(path).code == "truncated"


@pytest.mark.parametrize(("name", "fourcc"), [("empty.mp4", "mp4v"), ("empty.avi", "MJPG")])
def test_zero_frame_video_has_no_frames(tmp_path: Path, name: str, fourcc: str) -> None:
    writer = cv2.VideoWriter(str(tmp_path / name), cv2.VideoWriter_fourcc(*fourcc), FPS, (W, H))
    writer.release()
    assert clip_error(tmp_path / name).code == "no_frames"


def test_dicom_without_pixel_data_has_no_frames(tmp_path: Path) -> None:
    assert clip_error(write_dicom(tmp_path / "sr.dcm", dicom_dataset(None))).code == "no_frames"


def test_dicom_cut_in_half_is_truncated(tmp_path: Path) -> None:
    path = write_dicom(tmp_path / "us.dcm", dicom_dataset(grey_stack()))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    assert clip_error(path).code == "truncated"


def test_broken_dicoms_are_bad_dicom(tmp_path: Path) -> None:
    text = tmp_path / "notes.dcm"
    text.write_text("not a dicom file at all\n" * 20)
    assert clip_error(text).code == "bad_dicom"
    ds = dicom_dataset(grey_stack())
    del ds.Rows
    assert clip_error(write_dicom(tmp_path / "norows.dcm", ds)).code == "bad_dicom"


def test_absurd_dimensions_are_refused(tmp_path: Path) -> None:
    video = write_video(tmp_path / "clip.mp4", "mp4v", grey_frames())
    assert clip_error(video, max_width=32).code == "too_large_dimensions"
    huge = dicom_dataset(np.zeros((1, 16, 16), np.uint8))
    huge.Rows, huge.Columns = 20_000, 30_000  # header lies; refused before any pixel is decoded
    assert clip_error(write_dicom(tmp_path / "huge.dcm", huge)).code == "too_large_dimensions"
    tiny = dicom_dataset(np.zeros((3, 8, 8), np.uint8))
    assert clip_error(write_dicom(tmp_path / "tiny.dcm", tiny)).code == "too_small_dimensions"


def test_too_many_frames_are_refused(tmp_path: Path) -> None:
    video = write_video(tmp_path / "clip.avi", "MJPG", grey_frames())
    assert clip_error(video, max_frames=5).code == "too_many_frames"
    dicom = write_dicom(tmp_path / "us.dcm", dicom_dataset(grey_stack()))
    assert clip_error(dicom, max_frames=5).code == "too_many_frames"


# --------------------------------------------------------------------------------------------------
# File names


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Clip 01.MP4", "Clip 01.mp4"),
        ("  scan.avi  ", "scan.avi"),
        ("wrist.MOV", "wrist.mov"),
        ("study.DICOM", "study.dicom"),
        ("IM_0001", "IM_0001"),
        ("1.2.840.113619.2.55.3", "1.2.840.113619.2.55.3"),
        ("e\u0301cho.dcm", "\u00e9cho.dcm"),
    ],
)
def test_safe_filename_normalises_good_names(name: str, expected: str) -> None:
    assert safe_filename(name) == expected


@pytest.mark.parametrize(
    "name",
    [
        "",
        "   ",
        "..",
        "../etc/passwd",
        "..\\..\\clip.mp4",
        "a/b.mp4",
        "/tmp/clip.mp4",
        "C:\\scans\\clip.mp4",
        "C:clip.mp4",
        "clip\x00.mp4",
        "clip\n.mp4",
        "clip\u202e4pm.exe",
        ".mp4",
        "x" * 300 + ".mp4",
    ],
)
def test_safe_filename_refuses_path_tricks(name: str) -> None:
    with pytest.raises(ClipError) as caught:
        safe_filename(name)
    assert caught.value.code == "bad_filename"


@pytest.mark.parametrize("name", ["clip.exe", "clip.mp4.exe", "frame.png", "report.pdf", "clip.mkv"])
def test_safe_filename_refuses_other_types(name: str) -> None:
    with pytest.raises(ClipError) as caught:
        safe_filename(name)
    assert caught.value.code == "unsupported_type"
