"""Study-scale training wall time: the three models trained on phantom crops as the protocol does.

Full scale is 8,000 training crops (80 hands x 100 frames), 224 px, 30 epochs, all three models; the goal
on one H100 is under 3 minutes. On a CPU that takes hours, so by default this runs a measured slice
(`--hands 16 --frames 10 --epochs 1`) and prints the per-crop-epoch cost with the full-scale extrapolation.

    .venv/bin/python bench/bench_study.py                                   # CPU slice
    .venv/bin/python bench/bench_study.py --hands 80 --frames 100 --epochs 30 --batch-size 256 --device cuda
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from mlworker.media import crop_box  # noqa: E402
from mlworker.ml import MODEL_NAMES, CropTensors, TrainConfig, fit  # noqa: E402
from mlworker.ml.data import crop_image  # noqa: E402
from mlworker.phantom import PhantomConfig, generate_clip  # noqa: E402

FULL_CROP_EPOCHS = 80 * 100 * 30


def phantom_crops(hands: int, frames: int, size: int) -> CropTensors:
    """Crops around the true nerve of `hands` phantom clips (half CTS), `frames` evenly spaced frames each."""
    images, labels, hand_ids = [], [], []
    for hand in range(hands):
        group = "cts" if hand % 2 else "control"
        clip = generate_clip(group, seed=hand, config=PhantomConfig(n_frames=frames))
        for index in range(frames):
            box = crop_box(tuple(clip.centers[index]), size_mm=15.0, spacing_mm=clip.pixel_spacing_mm,
                           frame_size=(clip.frames.shape[2], clip.frames.shape[1]))
            images.append(crop_image(clip.frames[index], box, size))
            labels.append(int(group == "cts"))
            hand_ids.append(hand)
    n = len(images)
    return CropTensors(torch.from_numpy(np.stack(images))[:, None], torch.tensor(labels), torch.tensor(hand_ids),
                       torch.arange(n))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hands", type=int, default=16)
    parser.add_argument("--frames", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--models", nargs="+", default=list(MODEL_NAMES))
    args = parser.parse_args()

    start = time.perf_counter()
    crops = phantom_crops(args.hands, args.frames, args.size)
    val = crops.select(np.arange(0, len(crops), 10))
    print(f"phantom crops: {len(crops)} at {args.size} px in {time.perf_counter() - start:.1f} s")
    total = 0.0
    for name in args.models:
        config = TrainConfig(model_name=name, pretrained=False, epochs=args.epochs, batch_size=args.batch_size,
                             input_size=args.size, early_stopping_patience=None, device=args.device)
        with tempfile.TemporaryDirectory() as checkpoints:
            began = time.perf_counter()
            result = fit(config, crops, val, checkpoint_dir=Path(checkpoints))
            seconds = time.perf_counter() - began
        total += seconds
        per = seconds / (len(crops) * args.epochs)
        print(f"{name:16s} {seconds:7.1f} s on {result.device}  ({per * 1000:.2f} ms per crop-epoch, "
              f"full scale ~{per * FULL_CROP_EPOCHS / 60:.1f} min)")
    measured = len(crops) * args.epochs
    print(f"all models: {total:.1f} s for {measured} crop-epochs each; "
          f"full-scale extrapolation {total / measured * FULL_CROP_EPOCHS / 60:.1f} min "
          f"(goal on one H100: < 3 min; ratio goal/extrapolated = {3.0 / (total / measured * FULL_CROP_EPOCHS / 60):.3f})")


if __name__ == "__main__":
    main()
