"""The package's names resolve lazily: importing it costs nothing until a name is used."""

from __future__ import annotations

import subprocess
import sys

import mlworker.explain
from mlworker.explain import methods, overlay


def test_importing_the_package_loads_neither_torch_nor_lime() -> None:
    code = "import sys, mlworker.explain; print(any(m in sys.modules for m in ('torch', 'lime', 'cv2')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_names_resolve_to_their_modules() -> None:
    assert mlworker.explain.explain_crops is methods.explain_crops
    assert mlworker.explain.heatmap_png is overlay.heatmap_png
    assert {"explain_crops", "overlay_png", "nerve_mask", "summarise_shares", "sanity_check"} <= set(
        mlworker.explain.__all__)
    try:
        mlworker.explain.no_such_name  # noqa: B018
    except AttributeError as exc:
        assert "no_such_name" in str(exc)
    else:
        raise AssertionError("an unknown name must raise AttributeError")
