"""bench/gpu_check.sh: every part of the GPU check runs in its CPU smoke mode and leaves its figures in $OUT."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = ROOT / "bench" / "gpu_check.sh"


def _records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]


# The GPU host's image has torch, timm, torchvision, OpenCV and numpy, but none of these (see the README).
NOT_ON_THE_GPU_HOST = ("pydicom", "av", "isal", "django", "celery", "kombu", "rest_framework", "lime", "plotly")

SITECUSTOMIZE = """import sys


class NotOnTheGpuHost:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {blocked!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}} (not on the GPU host)")


sys.meta_path.insert(0, NotOnTheGpuHost())
"""


def test_smoke_mode_runs_every_part(tmp_path: Path) -> None:
    """Every part runs, also where only the GPU host's packages can be imported."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE.format(blocked=set(NOT_ON_THE_GPU_HOST)))
    out = tmp_path / "out"
    env = {**os.environ, "OUT": str(out), "PYTHON": sys.executable, "PYTHONPATH": str(site)}
    done = subprocess.run(["bash", str(SCRIPT), "--smoke"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "FAILED" not in done.stdout

    assert "not on the GPU host" not in done.stdout + done.stderr
    records = _records(out / "1_loop_and_raw.txt")  # parts 1 and 3 share one process in the smoke mode
    loops = {(r["variant"], r["model"]): r for r in records if r["part"] == "loop"}
    assert set(loops) == {("default", "squeezenet1_1"), ("compiled", "squeezenet1_1")}
    for record in loops.values():
        assert record["end_to_end_ips"] > 0 and record["raw_ips"] > 0
        assert record["ratio"] == record["end_to_end_ips"] / record["raw_ips"]
        assert record["input_s_per_epoch"] > 0 and record["val_s_per_epoch"] > 0
    assert loops["compiled", "squeezenet1_1"]["runtime"]["compile"] == "eager"
    assert loops["default", "squeezenet1_1"]["runtime"]["compile"] is None
    raw = [r for r in records if r["part"] == "raw"]
    assert {r["variant"] for r in raw} == {"eager", "fused", "compiled", "compiled+fused"}
    # The model's own speed is timed under the kernel settings fit trains with.
    trained_with = loops["default", "squeezenet1_1"]["runtime"]
    assert trained_with["deterministic_algorithms"] is True  # on the CPU
    for record in raw:
        assert record["deterministic_algorithms"] == trained_with["deterministic_algorithms"]
        assert record["cudnn_benchmark"] == trained_with["cudnn_benchmark"]

    study = _records(out / "2_study.txt")[-1]
    assert set(study["back_to_back"]) == {"squeezenet1_1", "mobilenetv2_100", "efficientnet_b0"}
    assert sorted(r["model"] for r in study["concurrent"]["runs"]) == sorted(study["back_to_back"])
    assert study["full_study_s"] > study["full_decode_s"] > 0 and study["goal_s"] == 180.0
    assert "EXTRAPOLATED to 8000 crops x 30 epochs" in (out / "2_study.txt").read_text()


@pytest.mark.skipif(torch.cuda.is_available(), reason="on a GPU the full check is the benchmark, not a test")
def test_without_a_gpu_the_full_check_says_to_use_the_smoke_mode(tmp_path: Path) -> None:
    env = {**os.environ, "OUT": str(tmp_path), "PYTHON": sys.executable}
    done = subprocess.run(["bash", str(SCRIPT)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "run with --smoke" in done.stderr
    assert subprocess.run(["bash", str(SCRIPT), "--fast"], cwd=ROOT, env=env, capture_output=True,
                          timeout=30).returncode == 2
