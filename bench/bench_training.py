"""Training throughput, end to end, against the model's own speed on ready-made tensors of the same shape.

End to end is what a run pays per epoch: `fit` over uint8 crops (shuffling, per-batch transfer, augmentation
and normalisation on the device), validation every epoch and its checkpoints, plus reading the crops from the
manifest's crop cache. Decoding the PNGs (once per manifest and crop size) is printed on its own line.
The model's own speed is forward + backward + optimizer step on one random batch already on the device.
Both are timed over whole epochs of the same number of images, alternating, best of --repeats; at least
--min-seconds of model steps, so timer noise cannot push the ratio above 1.
Goal: ratio >= 0.85 on a GPU, >= 0.7 on the CPU.

    .venv/bin/python bench/bench_training.py                      # CPU: 64 px, 256 crops, batch 32, 2 epochs
    .venv/bin/python bench/bench_training.py --device cuda        # GPU: 224 px, 8192 crops, batch 256, 3 epochs
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from mlworker.ml import (  # noqa: E402
    MODEL_NAMES,
    CropSample,
    TrainConfig,
    autocast,
    build_model,
    evaluate,
    fit,
    load_crops,
    prepare_model,
    select_device,
)
from mlworker.ml.crop_cache import cache_file, cached_crop_images  # noqa: E402
from mlworker.ml.train import EVAL_BATCH_SIZE  # noqa: E402


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def crops_on_disk(n: int, size: int, folder: Path, seed: int = 0) -> tuple[list[CropSample], float, float]:
    """n frames written as PNGs (4x the crop side, as a scan frame around its nerve box), decoded and cropped
    through `load_crops` into the crop cache, then read back: (samples, decode s, cache read s)."""
    rng = np.random.default_rng(seed)
    side = size * 4
    samples = []
    for i in range(n):
        path = folder / f"frame{i}.png"
        cv2.imwrite(str(path), rng.integers(0, 256, (side, side), dtype=np.uint8))
        samples.append(CropSample(str(path), (side // 4, side // 4, side // 2, side // 2), i % 2, i // 4, i))
    cache = cache_file(folder, manifest_hash="bench", size=size)
    start = time.perf_counter()
    cached_crop_images(cache, range(n), lambda: load_crops(samples, size=size).images)
    decode_s = time.perf_counter() - start
    start = time.perf_counter()
    cached_crop_images(cache, range(n), lambda: None)
    return samples, decode_s, time.perf_counter() - start


def model_seconds_per_image(name: str, size: int, batch_size: int, device: torch.device, min_seconds: float) -> float:
    """Forward + backward + Adam step on one random batch already on the device, as `fit` runs it."""
    torch.manual_seed(0)
    model = prepare_model(build_model(name, pretrained=False), device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    x = torch.randn(batch_size, 3, size, size, device=device)
    if device.type == "cuda":
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 2, (batch_size,), device=device)

    def step() -> None:
        with autocast(device):
            logits = model(x)
        loss = F.cross_entropy(logits.float(), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(3):  # warm-up: allocator, cuDNN autotuning, first-call overheads
        step()
    _sync(device)
    steps, start = 0, time.perf_counter()
    while steps < 10 or time.perf_counter() - start < min_seconds:
        step()
        steps += 1
        if device.type == "cuda" and steps % 10 == 0:
            _sync(device)
    _sync(device)
    return (time.perf_counter() - start) / (steps * batch_size)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda[:N]")
    parser.add_argument("--size", type=int, default=None, help="crop side in px (64 on the CPU, 224 on a GPU)")
    parser.add_argument("--batch-size", type=int, default=None, help="32 on the CPU, 256 on a GPU")
    parser.add_argument("--images", type=int, default=None, help="training crops (256 on the CPU, 8192 on a GPU)")
    parser.add_argument("--epochs", type=int, default=None, help="2 on the CPU, 3 on a GPU")
    parser.add_argument("--checkpoint-every", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=2, help="alternating timings of each kind; best kept")
    parser.add_argument("--min-seconds", type=float, default=None, help="model-step timing floor (3 CPU, 2 GPU)")
    parser.add_argument("--models", nargs="+", default=list(MODEL_NAMES), choices=MODEL_NAMES)
    parser.add_argument("--json", action="store_true", help="also print one JSON line with the results")
    args = parser.parse_args(argv)

    device = select_device(args.device)
    gpu = device.type == "cuda"
    size = args.size or (224 if gpu else 64)
    batch = args.batch_size or (256 if gpu else 32)
    images = args.images or (8192 if gpu else 256)
    epochs = args.epochs or (3 if gpu else 2)
    min_seconds = args.min_seconds or (2.0 if gpu else 3.0)
    goal = 0.85 if gpu else 0.7
    where = torch.cuda.get_device_name(device) if gpu else f"CPU, {torch.get_num_threads()} torch threads"
    val_n = max(images // 8, 2)
    with tempfile.TemporaryDirectory() as tmp:
        samples, decode_s, read_s = crops_on_disk(images + val_n, size, Path(tmp))
        crops = load_crops(samples, size=size)
    train, val = crops.select(range(images)), crops.select(range(images, images + val_n))
    print(f"device {where}; {images} training + {val_n} validation crops of {size} px, batch {batch}, "
          f"{epochs} epochs, checkpoint every {args.checkpoint_every}, augmentation on, best of {args.repeats}")
    print(f"crops: decode PNGs once per manifest {decode_s:.2f} s ({(images + val_n) / decode_s:.0f} crops/s); "
          f"read from the crop cache {read_s:.3f} s (counted in every run below)")
    print(f"{'model':16s} {'end-to-end':>10s} {'model':>8s} {'ratio':>6s} | per epoch: {'train':>7s} {'val':>6s} "
          f"{'ckpt+setup':>10s}   (img/s, s)   goal >= {goal}")
    results = []
    for name in args.models:
        config = TrainConfig(model_name=name, epochs=epochs, batch_size=batch, input_size=size, pretrained=False,
                             early_stopping_patience=None, device=str(device), checkpoint_every=args.checkpoint_every)
        best_fit, best_model = None, None
        for _ in range(args.repeats):
            with tempfile.TemporaryDirectory() as ckpt:
                _sync(device)
                start = time.perf_counter()
                result = fit(config, train, val, checkpoint_dir=Path(ckpt))
                _sync(device)
                wall = time.perf_counter() - start
            if best_fit is None or wall < best_fit[0]:
                best_fit = (wall, result)
            per_image = model_seconds_per_image(name, size, batch, device, min_seconds)
            best_model = per_image if best_model is None else min(best_model, per_image)
        wall, result = best_fit
        end_to_end = epochs * images / (wall + read_s)
        model_ips = 1.0 / best_model
        epoch_s = [h["seconds"] for h in result.history]
        # Validation alone, timed as fit runs it (inference mode, EVAL_BATCH_SIZE, no augmentation).
        net = prepare_model(build_model(name, pretrained=False), device)
        evaluate(net, val, device=device, batch_size=EVAL_BATCH_SIZE)
        _sync(device)
        start = time.perf_counter()
        evaluate(net, val, device=device, batch_size=EVAL_BATCH_SIZE)
        _sync(device)
        val_s = time.perf_counter() - start
        train_s = sum(epoch_s) / epochs - val_s
        other_s = (wall - sum(epoch_s)) / epochs
        ratio = end_to_end / model_ips
        flag = "" if ratio >= goal else "  BELOW GOAL"
        print(f"{name:16s} {end_to_end:10.1f} {model_ips:8.1f} {ratio:6.2f} | {train_s:18.2f} {val_s:6.2f} "
              f"{other_s:10.2f}{flag}", flush=True)
        results.append({"model": name, "end_to_end_ips": end_to_end, "model_ips": model_ips, "ratio": ratio,
                        "train_s_per_epoch": train_s, "val_s_per_epoch": val_s, "other_s_per_epoch": other_s})
    if args.json:
        print(json.dumps({"device": where, "size": size, "batch_size": batch, "images": images, "epochs": epochs,
                          "decode_s": decode_s, "cache_read_s": read_s, "results": results}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
