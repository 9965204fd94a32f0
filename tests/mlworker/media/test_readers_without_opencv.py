"""The web process validates uploads: opening and reading a clip loads PyAV and pydicom, never OpenCV."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

from mlworker.phantom.writers import write_avi_with_repeats

from .test_readers import dicom_dataset, grey_stack, write_dicom


def test_opening_and_reading_video_and_dicom_imports_no_opencv(tmp_path: Path) -> None:
    video = write_avi_with_repeats([np.full((48, 64), v, np.uint8) for v in (10, 200)], [0, 3], 5, tmp_path / "v.avi")
    dicom = write_dicom(tmp_path / "us.dcm", dicom_dataset(grey_stack()))
    # A fresh interpreter: this test process has long imported OpenCV for other tests.
    code = (
        "import sys\n"
        "from mlworker.media import open_clip\n"
        f"for path in ({str(video)!r}, {str(dicom)!r}):\n"
        "    with open_clip(path) as reader:\n"
        "        frames = list(reader.read(range(reader.info.frame_count)))\n"
        "        assert len(frames) == reader.info.frame_count\n"
        "print('cv2' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[3],
                            capture_output=True, text=True, timeout=120, check=True)
    assert result.stdout.strip() == "False", "reading a clip imported OpenCV"
