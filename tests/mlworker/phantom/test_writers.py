"""Phantom writers: video and DICOM round trips, JSON ground truth."""

import json

import cv2
import numpy as np
import pydicom
import pytest

from mlworker.phantom import PhantomConfig, generate_clip, ground_truth, write_dicom, write_video


@pytest.fixture(scope="module")
def clip():
    return generate_clip("cts", 7, PhantomConfig(n_frames=12))


@pytest.mark.parametrize("suffix, max_mean_error", [(".mp4", 12.0), (".avi", 12.0)])
def test_video_round_trip(clip, tmp_path, suffix, max_mean_error):
    path = write_video(clip, tmp_path / f"clip{suffix}")
    assert path.exists()
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    width, height = cap.get(cv2.CAP_PROP_FRAME_WIDTH), cap.get(cv2.CAP_PROP_FRAME_HEIGHT)
    cap.release()
    assert len(frames) == 12
    assert (width, height) == (320, 240) and frames[0].shape == (240, 320, 3)
    grey = cv2.cvtColor(frames[5], cv2.COLOR_BGR2GRAY).astype(float)
    assert np.abs(grey - clip.frames[5]).mean() < max_mean_error  # lossy, but the same picture


def test_video_refuses_unknown_container(clip, tmp_path):
    with pytest.raises(ValueError, match=r"\.mp4 or \*\.avi"):
        write_video(clip, tmp_path / "clip.mov")


@pytest.mark.parametrize("spacing", [0.125, 0.25])
def test_dicom_round_trip_keeps_exact_spacing_and_pixels(tmp_path, spacing):
    config = PhantomConfig(width=200 if spacing == 0.125 else 160, height=160 if spacing == 0.125 else 120,
                           n_frames=5, pixel_spacing_mm=spacing)
    clip = generate_clip("control", 3, config)
    path = write_dicom(clip, tmp_path / "clip.dcm", patient_id="CTS-0042", transducer="L18-5",
                       model_name="Aplio i800", frequency_mhz=18.0)
    ds = pydicom.dcmread(path)  # no force=True: a proper Part-10 file with preamble and meta
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.3.1"
    assert ds.file_meta.MediaStorageSOPClassUID == ds.SOPClassUID
    assert ds.Modality == "US" and ds.PhotometricInterpretation == "MONOCHROME2"
    assert (ds.BitsAllocated, ds.BitsStored, ds.SamplesPerPixel) == (8, 8, 1)
    assert int(ds.NumberOfFrames) == 5 and (ds.Rows, ds.Columns) == clip.frames.shape[1:]
    assert float(ds.FrameTime) == pytest.approx(40.0) and int(ds.CineRate) == 25
    region = ds.SequenceOfUltrasoundRegions[0]
    assert region.PhysicalUnitsXDirection == 3 and region.PhysicalUnitsYDirection == 3
    assert region.PhysicalDeltaX == spacing / 10 and region.PhysicalDeltaY == spacing / 10
    assert (region.RegionLocationMinX0, region.RegionLocationMinY0) == (0, 0)
    assert (region.RegionLocationMaxX1, region.RegionLocationMaxY1) == (ds.Columns - 1, ds.Rows - 1)
    assert region.TransducerFrequency == 18000
    assert ds.ManufacturerModelName == "Aplio i800" and ds.TransducerData == "L18-5"
    assert ds.PatientID == "CTS-0042" and str(ds.PatientName) == "CTS-0042"
    assert not ds.get("PatientBirthDate")
    assert np.array_equal(ds.pixel_array, clip.frames)


def test_dicom_defaults_and_deterministic_uids(clip, tmp_path):
    a = pydicom.dcmread(write_dicom(clip, tmp_path / "a.dcm"))
    b = pydicom.dcmread(write_dicom(clip, tmp_path / "b.dcm"))
    assert a.PatientID == "PHANTOM" and a.Manufacturer == "CTS-Study phantom"
    assert a.SOPInstanceUID == b.SOPInstanceUID
    c = pydicom.dcmread(write_dicom(clip, tmp_path / "c.dcm", patient_id="CTS-0001"))
    assert c.SOPInstanceUID != a.SOPInstanceUID


def test_ground_truth_is_json_and_matches_the_clip(clip):
    truth = json.loads(json.dumps(ground_truth(clip)))
    assert truth["n_frames"] == 12 and truth["pixel_spacing_mm"] == [0.125, 0.125]
    assert truth["seed"] == 7 and truth["group"] == "cts" == truth["params"]["group"]
    assert truth["params"]["csa_mm2"] == clip.params.csa_mm2
    frame = truth["frames"][4]
    assert frame["index"] == 4
    assert frame["csa_mm2"] == pytest.approx(clip.csa_mm2[4])
    assert np.allclose(frame["center_px"], clip.centers[4])
    assert np.allclose(np.array(frame["outline_px"]), clip.outlines[4]) and len(frame["outline_px"]) == 64
