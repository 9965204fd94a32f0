"""The reader's site and scanner fields, read from real DICOM headers (pydicom's example ultrasound files)."""

from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file

from mlworker.media import open_clip
from mlworker.phantom import PhantomConfig, generate_clip, write_dicom


@pytest.mark.parametrize("name, manufacturer, model, institution", [
    ("examples_jpeg2k.dcm", "G.E. Medical Systems", "LOGIQ 700", "BAPTIST MED CTR"),
    ("examples_rgb_color.dcm", "G.E. Medical Systems", "LOGIQ 700", "BAPTIST MED CTR"),
    ("examples_palette.dcm", "Philips Medical Systems", "CX50", "Philips Healthcare"),
    ("examples_ybr_color.dcm", "SonoSite, Inc.", "Turbo", None),  # InstitutionName present but empty
])
def test_example_files_give_manufacturer_model_and_institution(name, manufacturer, model, institution):
    with open_clip(get_testdata_file(name)) as reader:
        info = reader.info
    assert (info.manufacturer, info.model_name, info.institution_name) == (manufacturer, model, institution)
    assert info.frame_count >= 1


def test_header_copied_onto_a_multiframe_phantom_is_read(tmp_path: Path):
    """A cine loop (the study's real input) carrying the GE example's acquisition elements."""
    path = write_dicom(generate_clip("control", 1, PhantomConfig(width=96, height=64, n_frames=5, pixel_spacing_mm=0.25)),
                       tmp_path / "ge.dcm")
    source = pydicom.dcmread(get_testdata_file("examples_jpeg2k.dcm"), stop_before_pixels=True)
    ds = pydicom.dcmread(path)
    for keyword in ("Manufacturer", "ManufacturerModelName", "InstitutionName"):
        setattr(ds, keyword, getattr(source, keyword))
    ds.save_as(path)
    with open_clip(path) as reader:
        info = reader.info
    assert (info.manufacturer, info.model_name, info.institution_name) == (
        "G.E. Medical Systems", "LOGIQ 700", "BAPTIST MED CTR")
    assert info.frame_count == 5


def test_video_has_no_header_fields(tmp_path: Path):
    from mlworker.phantom import write_video

    path = write_video(generate_clip("control", 1, PhantomConfig(width=96, height=64, n_frames=5, pixel_spacing_mm=0.25)), tmp_path / "v.mp4")
    with open_clip(path) as reader:
        info = reader.info
    assert (info.manufacturer, info.model_name, info.institution_name) == (None, None, None)
