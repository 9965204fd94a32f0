"""Only ultrasound DICOM is accepted: CT, MR and other modalities are refused before their spacing is used."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from pydicom.data import get_testdata_file

from mlworker.media.readers import ClipError, DicomReader, open_clip

from .test_readers import dicom_dataset, grey_stack, write_dicom


@pytest.mark.parametrize(("name", "what"), [("CT_small.dcm", "CT"), ("MR_small.dcm", "MR")])
def test_ct_and_mr_files_are_refused_as_not_ultrasound(tmp_path: Path, name: str, what: str) -> None:
    source = get_testdata_file(name)
    assert source is not None, f"pydicom ships {name}"
    path = Path(shutil.copy(source, tmp_path / "upload.dcm"))
    with pytest.raises(ClipError) as caught:
        open_clip(path)
    assert caught.value.code == "not_ultrasound"
    assert f"Modality {what}" in caught.value.message and "not ultrasound" in caught.value.message


def test_pydicoms_ultrasound_cine_loop_is_accepted(tmp_path: Path) -> None:
    source = get_testdata_file("examples_ybr_color.dcm")  # Ultrasound Multi-frame Image, 30 frames
    assert source is not None
    with open_clip(Path(shutil.copy(source, tmp_path / "us"))) as reader:
        assert isinstance(reader, DicomReader)
        assert reader.info.frame_count == 30
        frame, index = next(reader.read([29]))
    assert index == 29 and frame.dtype == np.uint8


def test_ultrasound_sop_class_without_modality_is_accepted(tmp_path: Path) -> None:
    ds = dicom_dataset(grey_stack())
    del ds.Modality
    with open_clip(write_dicom(tmp_path / "us.dcm", ds)) as reader:
        assert reader.info.pixel_spacing_mm is not None


def test_other_modality_with_ultrasound_regions_is_still_refused(tmp_path: Path) -> None:
    # A secondary capture claiming US regions is not an ultrasound acquisition.
    ds = dicom_dataset(grey_stack())
    ds.Modality = "OT"
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    with pytest.raises(ClipError) as caught:
        open_clip(write_dicom(tmp_path / "sc.dcm", ds))
    assert caught.value.code == "not_ultrasound"


def test_dicom_saying_nothing_of_its_modality_is_refused(tmp_path: Path) -> None:
    ds = dicom_dataset(grey_stack())
    del ds.Modality
    del ds.SOPClassUID
    ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    with pytest.raises(ClipError) as caught:
        open_clip(write_dicom(tmp_path / "anon.dcm", ds))
    assert caught.value.code == "not_ultrasound" and "does not say" in caught.value.message


def test_frame_time_vector_gives_each_frame_its_time(tmp_path: Path) -> None:
    ds = dicom_dataset(grey_stack(4), frame_time_ms=None)
    ds.FrameTimeVector = [0, 40, 40, 120]
    with open_clip(write_dicom(tmp_path / "us.dcm", ds)) as reader:
        assert reader.info.frame_times_s == pytest.approx((0.0, 0.04, 0.08, 0.2))
        assert reader.info.timestamp_s(3) == pytest.approx(0.2)
