"""How long training will take, before launch: measured throughput of this installation, else a reference.

Pure arithmetic (no Django, no torch). Throughput is training crops per second of epoch wall time,
validation included, which is what `FitResult.images_per_s` measures and the run records.
"""

from __future__ import annotations

from dataclasses import dataclass

# bench/bench_study.py on a 2-core CPU (README "Benchmarks"): ms per training crop per epoch at 224 px.
REFERENCE_MS_PER_CROP_EPOCH = {"squeezenet1_1": 36.7, "mobilenetv2_100": 101.0, "efficientnet_b0": 122.0}
REFERENCE_SIZE = 224
REFERENCE_DEVICE = "a 2-core CPU (README benchmark)"


@dataclass(frozen=True)
class Measured:
    images_per_s: float
    input_size: int
    device: str
    run_id: int


@dataclass(frozen=True)
class Estimate:
    model_name: str
    seconds: float
    images_per_s: float
    source: str  # where the throughput comes from, said to the PI


def training_estimate(*, model_name: str, crops: int, epochs: int, input_size: int,
                      measured: Measured | None) -> Estimate:
    """Seconds to train `epochs` over `crops` training crops; measured at this size if given, else the reference.

    The reference is scaled by pixel count from 224 px (convolution cost grows with the image area).
    """
    if measured is not None:
        rate = measured.images_per_s
        source = f"measured on {measured.device} by run #{measured.run_id} at {measured.input_size} px"
    else:
        rate = 1000.0 / REFERENCE_MS_PER_CROP_EPOCH[model_name] * (REFERENCE_SIZE / input_size) ** 2
        scaled = "" if input_size == REFERENCE_SIZE else f", scaled from {REFERENCE_SIZE} to {input_size} px"
        source = f"reference figure for {REFERENCE_DEVICE}{scaled}; no run measured here yet"
    return Estimate(model_name=model_name, seconds=crops * epochs / rate, images_per_s=rate, source=source)


def duration(seconds: float | None) -> str:
    """'45 s', '12 min', '3 h 20 min', for people."""
    if seconds is None:
        return "—"
    seconds = max(0, round(seconds))
    if seconds < 90:
        return f"{seconds} s"
    minutes = round(seconds / 60)
    if minutes < 90:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60:02d} min"
