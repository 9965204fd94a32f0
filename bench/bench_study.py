"""Study-scale training: the three models on phantom crops as the protocol trains them, measured and extrapolated.

Full scale is 8,000 crops (80 hands x 100 frames) x 30 epochs x three models at 224 px; the goal on one
H100/H200-class GPU is under 3 minutes. The script prints what it MEASURED: decoding the crops once, then each
model's `fit` back to back (device-resident crops, validation and checkpoints included), split into its steady
epoch time and one-time costs (model build, the first epoch's autotuning or compiling, the last checkpoint);
with --concurrent, the same fits in one process per model started together (as a worker with three processes
would run an experiment's three runs). Then, separately, the EXTRAPOLATION to full scale: decoding per crop,
steady epochs per crop-epoch (scaled by (224/size)^2 when measured on smaller crops), one-time costs as they were.

--crops N tiles the decoded phantom crops to N (a GPU needs thousands of crops per epoch to reach its speed;
writing 8,000 phantom frames would take longer than the training); the pixels do not change the timing.

    .venv/bin/python bench/bench_study.py                # CPU slice: 16 hands x 10 frames, 64 px, 1 epoch
    .venv/bin/python bench/bench_study.py --device cuda  # GPU: 16 hands x 100 frames tiled to 8,000, 3 epochs
    .venv/bin/python bench/bench_study.py --device cuda --concurrent
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from mlworker.ml import MODEL_NAMES, CropSample, CropTensors, TrainConfig, fit, load_crops, select_device  # noqa: E402

FULL_HANDS, FULL_FRAMES, FULL_EPOCHS, FULL_SIZE, GOAL_MIN = 80, 100, 30, 224, 3.0


def phantom_frames(hands: int, frames: int, folder: Path) -> list[CropSample]:
    """PNG frames of `hands` phantom clips (half CTS) with their true nerve boxes: what a locked manifest names."""
    import cv2

    from mlworker.media import crop_box
    from mlworker.phantom import PhantomConfig, generate_clip

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


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed_fit(config: TrainConfig, train: CropTensors, val: CropTensors, device: torch.device) -> dict[str, float]:
    """One run's `fit`, split into its steady epoch time and what it pays once."""
    with tempfile.TemporaryDirectory() as checkpoints:
        sync(device)
        began = time.perf_counter()
        result = fit(config, train, val, checkpoint_dir=Path(checkpoints))
        sync(device)
        wall = time.perf_counter() - began
    seconds = [h["seconds"] for h in result.history]
    # The first epoch carries cuDNN autotuning or compilation: a one-time cost when later epochs exist to time.
    steady = float(np.mean(seconds[1:])) if len(seconds) > 1 else seconds[0]
    return {"wall_s": wall, "steady_epoch_s": steady, "one_time_s": wall - steady * len(seconds),
            "epochs": len(seconds), "train_crops": len(train)}


def _child(args: argparse.Namespace) -> int:
    """One model of --concurrent: load the crops, say ready, wait for the go line, fit, print the timing."""
    if args.threads:
        torch.set_num_threads(args.threads)
    data = torch.load(args.crops_file, weights_only=True)
    train, val = CropTensors(*data["train"]), CropTensors(*data["val"])
    config = TrainConfig.from_dict(json.loads(args.child))
    device = select_device(config.device)
    if device.type == "cuda":
        torch.empty(1, device=device)  # the CUDA context is process start-up, not training
    print("ready", flush=True)
    if sys.stdin.readline().strip() != "go":
        return 1  # the parent died or gave up (a time limit): train nothing on its behalf
    timing = timed_fit(config, train, val, device)
    print(json.dumps({"model": config.model_name, **timing}), flush=True)
    return 0


def concurrent(configs: list[TrainConfig], train: CropTensors, val: CropTensors, threads: int) -> dict:
    """The configs' fits in one process each, released together: (wall from the release to the last end, each
    process's own timing)."""
    with tempfile.TemporaryDirectory() as tmp:
        crops_file = Path(tmp) / "crops.pt"
        torch.save({"train": [train.images, train.labels, train.hand_ids, train.frame_ids],
                    "val": [val.images, val.labels, val.hand_ids, val.frame_ids]}, crops_file)
        children = [subprocess.Popen(
            [sys.executable, __file__, "--child", json.dumps(c.to_dict()), "--crops-file", str(crops_file),
             "--threads", str(threads)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) for c in configs]
        try:
            for child in children:
                if child.stdout.readline().strip() != "ready":
                    raise RuntimeError("a concurrent training process failed to start; see its error above")
            began = time.perf_counter()
            for child in children:
                child.stdin.write("go\n")
                child.stdin.flush()
            results = [json.loads(child.stdout.readline()) for child in children]
            wall = time.perf_counter() - began
        finally:
            for child in children:
                child.stdin.close()
                child.wait(timeout=60)
    return {"wall_s": wall, "runs": results}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--hands", type=int, default=None, help="phantom hands (16)")
    parser.add_argument("--frames", type=int, default=None, help="frames per hand (10 CPU, 100 GPU)")
    parser.add_argument("--crops", type=int, default=None, help="tile the decoded crops to this many (8000 GPU)")
    parser.add_argument("--epochs", type=int, default=None, help="1 CPU, 3 GPU")
    parser.add_argument("--size", type=int, default=None, help="crop side (64 CPU, 224 GPU)")
    parser.add_argument("--batch-size", type=int, default=None, help="32 CPU, 256 GPU")
    parser.add_argument("--checkpoint-every", type=int, default=5)
    parser.add_argument("--models", nargs="+", default=list(MODEL_NAMES), choices=MODEL_NAMES)
    parser.add_argument("--concurrent", action="store_true", help="also train the models at once, one process each")
    parser.add_argument("--json", action="store_true", help="print one JSON line with the results")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--crops-file", help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return _child(args)
    device = select_device(args.device)
    gpu = device.type == "cuda"
    hands = args.hands or 16
    frames = args.frames or (FULL_FRAMES if gpu else 10)
    epochs = args.epochs or (3 if gpu else 1)
    size = args.size or (FULL_SIZE if gpu else 64)
    batch = args.batch_size or (256 if gpu else 32)
    where = torch.cuda.get_device_name(device) if gpu else f"CPU, {torch.get_num_threads()} torch threads"

    with tempfile.TemporaryDirectory() as tmp:
        began = time.perf_counter()
        samples = phantom_frames(hands, frames, Path(tmp))
        written_s = time.perf_counter() - began
        print(f"setup (not part of a run): {len(samples)} phantom frames written in {written_s:.1f} s")
        began = time.perf_counter()
        decoded = load_crops(samples, size=size)
        decode_s = time.perf_counter() - began
    n = args.crops or (8000 if gpu else len(decoded))
    crops = decoded.select(torch.arange(n) % len(decoded))
    val = crops.select(np.arange(0, n, 10))
    train = crops.select([i for i in range(n) if i % 10])
    tiled = "" if n == len(decoded) else f" (tiled from {len(decoded)} decoded)"
    print(f"torch {torch.__version__}; device {where}; {len(train)} training + {len(val)} validation crops{tiled} "
          f"of {size} px, batch {batch}, {epochs} epoch(s), checkpoint every {args.checkpoint_every}")
    configs = [TrainConfig(model_name=name, pretrained=False, epochs=epochs, batch_size=batch, input_size=size,
                           early_stopping_patience=None, device=str(device), checkpoint_every=args.checkpoint_every)
               for name in args.models]
    print("MEASURED")
    print(f"  decode {len(decoded)} crops once (shared by the models via the crop cache): {decode_s:.2f} s "
          f"({decode_s / len(decoded) * 1000:.2f} ms a crop)")
    back_to_back = {}
    for config in configs:
        t = back_to_back[config.model_name] = timed_fit(config, train, val, device)
        print(f"  {config.model_name:16s} fit {t['wall_s']:7.1f} s = {t['epochs']} x {t['steady_epoch_s']:.2f} s "
              f"steady epoch ({len(train) / t['steady_epoch_s']:.0f} img/s, validation included) + one-time "
              f"{t['one_time_s']:.1f} s (build, first-epoch warm-up, checkpoints)", flush=True)
    serial_s = sum(t["wall_s"] for t in back_to_back.values())
    print(f"  back to back: {serial_s:.1f} s")
    together = None
    if args.concurrent:
        threads = 0 if gpu else max(1, (os.cpu_count() or 1) // len(configs))
        together = concurrent(configs, train, val, threads)
        runs = ", ".join(f"{r['model']} {r['wall_s']:.1f} s" for r in together["runs"])
        print(f"  concurrently, one process each{'' if gpu else f' ({threads} thread(s) each)'}: "
              f"{together['wall_s']:.1f} s ({runs}); back to back / concurrently = "
              f"{serial_s / together['wall_s']:.2f}", flush=True)

    full_crops = FULL_HANDS * FULL_FRAMES
    scale = (FULL_SIZE / size) ** 2
    full_decode = decode_s / len(decoded) * full_crops  # decoding costs per frame, whatever the crop size
    # Steady epochs scale with crops x epochs (and pixels); the one-time costs stay as measured.
    epoch_factor = full_crops / len(train) * scale * FULL_EPOCHS
    print(f"EXTRAPOLATED to {full_crops} crops x {FULL_EPOCHS} epochs at {FULL_SIZE} px"
          + ("" if size == FULL_SIZE else f" (measured at {size} px: per-crop cost scaled by (224/{size})^2)"))
    print(f"  decode once: {full_decode:.0f} s")
    serial_full = 0.0
    for name, t in back_to_back.items():
        seconds = t["steady_epoch_s"] * epoch_factor + t["one_time_s"]
        serial_full += seconds
        print(f"  {name:16s} {seconds / 60:8.2f} min")
    print(f"  three models back to back: {serial_full / 60:.2f} min training + decode {full_decode / 60:.2f} min")
    best_full = serial_full
    concurrent_full = None
    if together is not None:
        # The concurrent wall minus its longest one-time part is the runs' overlapped epochs: scale that part.
        one_time = max(r["one_time_s"] for r in together["runs"])
        concurrent_full = one_time + (together["wall_s"] - one_time) * epoch_factor / epochs
        best_full = min(serial_full, concurrent_full)
        print(f"  three models concurrently: {concurrent_full / 60:.2f} min training -> "
              f"{'concurrently' if concurrent_full < serial_full else 'back to back'} is faster")
    total = best_full + full_decode
    exact = n == full_crops and epochs == FULL_EPOCHS and size == FULL_SIZE
    kind = "measured at full scale" if exact else "extrapolated"
    print(f"  study: {total / 60:.2f} min ({kind}); goal on one H100/H200: < {GOAL_MIN:.0f} min "
          f"-> goal/time = {GOAL_MIN * 60 / total:.2f}" + ("" if gpu else " (a CPU is not what the goal is for)"))
    if args.json:
        print(json.dumps({"device": where, "size": size, "train_crops": len(train), "epochs": epochs,
                          "decode_s_per_crop": decode_s / len(decoded), "back_to_back": back_to_back,
                          "concurrent": together, "full_decode_s": full_decode, "full_back_to_back_s": serial_full,
                          "full_concurrent_s": concurrent_full, "full_study_s": total, "goal_s": GOAL_MIN * 60}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
