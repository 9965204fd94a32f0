"""mlworker's packages resolve their public names on first use, and every name they list resolves."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAZY_PACKAGES = ("mlworker.explain", "mlworker.media", "mlworker.ml", "mlworker.phantom")


@pytest.mark.parametrize("package", LAZY_PACKAGES)
def test_every_listed_name_resolves_from_its_module(package: str) -> None:
    module = importlib.import_module(package)
    for name in module.__all__:
        value = getattr(module, name)
        defining = importlib.import_module(f"{package}.{module._EXPORTS[name]}")
        assert value is getattr(defining, name), name
    assert set(module.__all__) <= set(dir(module))
    with pytest.raises(AttributeError, match="no attribute 'missing_name'"):
        module.missing_name  # noqa: B018


def test_phantom_frames_need_no_pydicom() -> None:
    """The GPU benchmark host has no pydicom: generating phantom clips must not import it; writing DICOM does."""
    code = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "pydicom":
            raise ModuleNotFoundError("No module named 'pydicom'")
sys.meta_path.insert(0, Block())
from mlworker.phantom import PhantomConfig, generate_clip
clip = generate_clip("cts", seed=1, config=PhantomConfig(n_frames=2))
assert clip.frames.shape[0] == 2
try:
    from mlworker.phantom import write_dicom
except ModuleNotFoundError as error:
    print("dicom:", error)
"""
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "dicom: No module named 'pydicom'" in done.stdout
