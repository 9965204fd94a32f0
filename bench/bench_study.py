"""Study-scale training: the three models on phantom crops as the protocol trains them, measured and extrapolated.

Full scale is 8,000 training crops (80 hands x 100 frames), 224 px, 30 epochs, three models; the goal on one
H100/H200-class GPU is under 3 minutes. The script prints what it measured (decoding the crops once, then each
model's fit, validation and checkpoints included) and, separately, the extrapolation to full scale: the decode
is a one-time cost per manifest (not scaled by epochs), training scales with crop-epochs.

    .venv/bin/python bench/bench_study.py                # CPU slice: 16 hands x 10 frames, 64 px, 1 epoch
    .venv/bin/python bench/bench_study.py --device cuda  # on a GPU: full scale by default, GPU figures printed
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from mlworker.media import crop_box  # noqa: E402
from mlworker.ml import MODEL_NAMES, CropSample, TrainConfig, fit, load_crops, select_device  # noqa: E402
from mlworker.phantom import PhantomConfig, generate_clip  # noqa: E402

FULL_HANDS, FULL_FRAMES, FULL_EPOCHS, FULL_SIZE, GOAL_MIN = 80, 100, 30, 224, 3.0


def phantom_frames(hands: int, frames: int, folder: Path) -> list[CropSample]:
    """PNG frames of `hands` phantom clips (half CTS) with their true nerve boxes: what a locked manifest names."""
    samples = []
    for hand in range(hands):
        group = "cts" if hand % 2 else "control"
        clip = generate_clip(group, seed=hand, config=PhantomConfig(n_frames=frames))
        for index in range(frames):
            path = folder / f"h{hand}_f{index}.png"
            cv2.imwrite(str(path), clip.frames[index])
            box = crop_box(tuple(clip.centers[index]), size_mm=15.0, spacing_mm=clip.pixel_spacing_mm,
                           frame_size=(clip.frames.shape[2], clip.frames.shape[1]))
            samples.append(CropSample(str(path), tuple(int(v) for v in box), int(group == "cts"), hand,
                                      hand * frames + index))
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--hands", type=int, default=None, help="training hands (16 CPU, 80 GPU)")
    parser.add_argument("--frames", type=int, default=None, help="frames per hand (10 CPU, 100 GPU)")
    parser.add_argument("--epochs", type=int, default=None, help="1 CPU, 30 GPU")
    parser.add_argument("--size", type=int, default=None, help="crop side (64 CPU, 224 GPU)")
    parser.add_argument("--batch-size", type=int, default=None, help="32 CPU, 256 GPU")
    parser.add_argument("--checkpoint-every", type=int, default=5)
    parser.add_argument("--models", nargs="+", default=list(MODEL_NAMES), choices=MODEL_NAMES)
    args = parser.parse_args()
    device = select_device(args.device)
    gpu = device.type == "cuda"
    hands = args.hands or (FULL_HANDS if gpu else 16)
    frames = args.frames or (FULL_FRAMES if gpu else 10)
    epochs = args.epochs or (FULL_EPOCHS if gpu else 1)
    size = args.size or (FULL_SIZE if gpu else 64)
    batch = args.batch_size or (256 if gpu else 32)
    where = torch.cuda.get_device_name(device) if gpu else f"CPU, {torch.get_num_threads()} torch threads"

    with tempfile.TemporaryDirectory() as tmp:
        began = time.perf_counter()
        samples = phantom_frames(hands, frames, Path(tmp))
        written_s = time.perf_counter() - began
        print(f"setup (not part of a run): {len(samples)} phantom frames written in {written_s:.1f} s")
        began = time.perf_counter()
        crops = load_crops(samples, size=size)
        decode_s = time.perf_counter() - began
    val = crops.select(np.arange(0, len(crops), 10))
    train = crops.select([i for i in range(len(crops)) if i % 10])
    print(f"device {where}; {len(train)} training + {len(val)} validation crops of {size} px, batch {batch}, "
          f"{epochs} epoch(s), checkpoint every {args.checkpoint_every}")
    print("MEASURED")
    print(f"  decode {len(crops)} crops once (shared by the models via the crop cache): {decode_s:.2f} s "
          f"({decode_s / len(crops) * 1000:.2f} ms a crop)")
    per_crop_epoch, one_time = {}, {}
    for name in args.models:
        config = TrainConfig(model_name=name, pretrained=False, epochs=epochs, batch_size=batch, input_size=size,
                             early_stopping_patience=None, device=str(device), checkpoint_every=args.checkpoint_every)
        with tempfile.TemporaryDirectory() as checkpoints:
            if gpu:
                torch.cuda.synchronize(device)
            began = time.perf_counter()
            result = fit(config, train, val, checkpoint_dir=Path(checkpoints))
            if gpu:
                torch.cuda.synchronize(device)
            seconds = time.perf_counter() - began
        epochs_s = sum(h["seconds"] for h in result.history)  # training + validation of every epoch
        per_crop_epoch[name] = epochs_s / (len(train) * epochs)
        one_time[name] = seconds - epochs_s  # model build and checkpoint writes
        print(f"  {name:16s} fit {seconds:8.1f} s on {result.device} = epochs {epochs_s:.1f} s "
              f"({len(train) * epochs / epochs_s:.0f} img/s, validation included) + build/checkpoints "
              f"{one_time[name]:.1f} s")
    trained_s = sum(per_crop_epoch[n] * len(train) * epochs for n in per_crop_epoch)
    print(f"  all: {decode_s + sum(one_time.values()) + trained_s:.1f} s")

    full_crops = FULL_HANDS * FULL_FRAMES
    full_decode = decode_s / len(crops) * full_crops  # decoding costs per frame, whatever the crop size
    print(f"EXTRAPOLATED to {full_crops} crops x {FULL_EPOCHS} epochs at {FULL_SIZE} px"
          + ("" if size == FULL_SIZE else f" (measured at {size} px: per-crop cost scaled by (224/{size})^2)"))
    scale = (FULL_SIZE / size) ** 2
    total = full_decode
    print(f"  decode once: {full_decode:.0f} s")
    for name, per in per_crop_epoch.items():
        seconds = per * scale * full_crops * FULL_EPOCHS + one_time[name]  # build and checkpoints: not per crop
        total += seconds
        print(f"  {name:16s} {seconds / 60:8.1f} min")
    exact = hands == FULL_HANDS and frames == FULL_FRAMES and epochs == FULL_EPOCHS and size == FULL_SIZE
    kind = "measured at full scale" if exact else "extrapolated"
    print(f"  three models back to back: {total / 60:.1f} min ({kind}); goal on one H100/H200: < {GOAL_MIN:.0f} min "
          f"-> ratio goal/time = {GOAL_MIN * 60 / total:.3f}" + ("" if gpu else " (a CPU is not what the goal is for)"))


if __name__ == "__main__":
    main()
