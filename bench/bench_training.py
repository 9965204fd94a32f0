"""Training throughput, end to end on the device-resident path, against the model's own speed on random tensors.

(b) End to end is what a run pays per epoch: `fit` over uint8 crops handed over on the CPU (uploaded once to the
device, then every batch gathered, augmented and normalised there), validation every epoch and checkpoints, plus
reading the crops from the manifest's crop cache. (a) The model's own speed ("raw") is forward + backward +
optimizer step on one random batch already on the device, with the same precision, memory format, optimizer
kernels and compilation. Both are timed over whole epochs of the same number of images, alternating, best of
--repeats; at least --min-seconds of raw steps, so timer noise cannot push the ratio above 1. Everything is timed
under the kernel settings `fit` trains with (cuDNN autotuning on a GPU, deterministic kernels on the CPU).
Goal: loop/raw >= 0.85 on a GPU, >= 0.7 on the CPU. `steady` is the same ratio over the epochs after the first,
which carry no compilation or autotuning: what a long run approaches.

The breakdown per epoch: `input` is the device-resident input path alone (gather, uint8 -> float, augmentation,
normalisation, one epoch timed on its own), `train` the epoch minus validation, `val` validation at inference
speed, `ckpt+setup` checkpoints, model build and warm-up spread over the epochs. Decoding the PNGs (once per
manifest and crop size) and reading the crop cache are measured on --decode-files frames and printed per crop.

--variants adds (a) for each model: the raw step eager and compiled, with the default (foreach) and the fused
optimizer. --loops compiled runs the loop with the compiled step (default: the default settings only).

    .venv/bin/python bench/bench_training.py                      # CPU: 64 px, 256 crops, batch 32, 2 epochs
    .venv/bin/python bench/bench_training.py --device cuda        # GPU: 224 px, 8192 crops, batch 256, 3 epochs
    .venv/bin/python bench/bench_training.py --device cuda --variants eager,fused,compiled,compiled+fused
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import asdict, replace
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from mlworker.ml import (  # noqa: E402
    MODEL_NAMES,
    BatchAugment,
    CropSample,
    CropTensors,
    Speedups,
    TrainConfig,
    autocast,
    batches,
    build_model,
    evaluate,
    fit,
    kernel_settings,
    load_crops,
    make_optimizer,
    model_normalization,
    prepare_model,
    select_device,
)
from mlworker.ml.crop_cache import cache_file, cached_crop_images  # noqa: E402
from mlworker.ml.train import EVAL_BATCH_SIZE  # noqa: E402

VARIANTS = ("eager", "fused", "compiled", "compiled+fused")


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def decode_timing(files: int, size: int, folder: Path, seed: int = 0) -> tuple[CropTensors, float, float]:
    """`files` PNG frames (640 x 480, a 160 px nerve box) decoded and cropped through `load_crops` into the crop
    cache, then read back: (crops, decode s per crop, cache read s per crop)."""
    rng = np.random.default_rng(seed)
    samples = []
    for i in range(files):
        path = folder / f"frame{i}.png"
        frame = cv2.GaussianBlur(rng.integers(0, 256, (480, 640), dtype=np.uint8), (5, 5), 0)  # speckle-like
        cv2.imwrite(str(path), frame)
        samples.append(CropSample(str(path), (240, 160, 160, 160), i % 2, i // 4, i))
    cache = cache_file(folder, manifest_hash="bench", size=size)
    start = time.perf_counter()
    cached_crop_images(cache, range(files), lambda: load_crops(samples, size=size).images)
    decode_s = time.perf_counter() - start
    start = time.perf_counter()
    images = cached_crop_images(cache, range(files), lambda: None)
    read_s = time.perf_counter() - start
    labels = torch.arange(files) % 2
    return CropTensors(images, labels, torch.arange(files) // 4, torch.arange(files)), decode_s / files, read_s / files


def tiled(crops: CropTensors, n: int) -> CropTensors:
    """`n` crops cycling through `crops` (the pixels' content does not change the timing)."""
    return crops.select(torch.arange(n) % len(crops))


def raw_step(name: str, config: TrainConfig, device: torch.device, min_seconds: float,
             min_steps: int = 10) -> dict[str, float]:
    """Forward + backward + optimizer step on one random batch already on the device, as `fit` runs it with
    `config`'s speed options: {"ips": images/s, "warmup_s": first steps (compilation, autotuning)}."""
    speed = Speedups.of(config, device)
    torch.manual_seed(0)
    if speed.compile:
        torch._dynamo.reset()
    model = prepare_model(build_model(name, pretrained=False), device, channels_last=speed.channels_last).train()
    optimizer = make_optimizer(model, config, fused=speed.fused_optimizer)
    step_model = torch.compile(model, backend=speed.compile, dynamic=False) if speed.compile else model
    batch, size = config.batch_size, config.input_size
    x = torch.randn(batch, 3, size, size, device=device)
    if speed.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 2, (batch,), device=device)

    def step() -> None:
        with autocast(device, speed.bf16):
            logits = step_model(x)
        loss = F.cross_entropy(logits.float(), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    start = time.perf_counter()
    for _ in range(3):  # allocator, cuDNN autotuning, compilation, first-call overheads
        step()
    sync(device)
    warmup_s = time.perf_counter() - start
    steps, start = 0, time.perf_counter()
    while steps < min_steps or time.perf_counter() - start < min_seconds:
        step()
        steps += 1
        if device.type == "cuda" and steps % 10 == 0:
            sync(device)
    sync(device)
    return {"ips": steps * batch / (time.perf_counter() - start), "warmup_s": warmup_s,
            "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
            "cudnn_benchmark": bool(torch.backends.cudnn.benchmark)}


def input_path_seconds(crops: CropTensors, config: TrainConfig, device: torch.device, name: str) -> float:
    """One epoch of the device-resident input path alone: gather, convert, augment, normalise (no model)."""
    speed = Speedups.of(config, device)
    mean, std = model_normalization(build_model(name, pretrained=False))
    augment = BatchAugment(generator=torch.Generator(device=device).manual_seed(1))

    def epoch() -> None:
        for x, _, _ in batches(crops, batch_size=config.batch_size, shuffle=True,
                               generator=torch.Generator().manual_seed(0), device=device, mean=mean, std=std,
                               augment=augment, channels_last=speed.channels_last, drop_last=True):
            pass
        sync(device)

    epoch()  # warm-up
    start = time.perf_counter()
    epoch()
    return time.perf_counter() - start


def loop(name: str, config: TrainConfig, train: CropTensors, val: CropTensors, device: torch.device, *,
         repeats: int, min_seconds: float, min_steps: int, read_s: float) -> dict[str, float]:
    """(b) the end-to-end loop against the raw step of the same settings, alternating, best of `repeats`."""
    best_fit, best_raw = None, None
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as ckpt:
            sync(device)
            start = time.perf_counter()
            result = fit(config, train, val, checkpoint_dir=Path(ckpt))
            sync(device)
            wall = time.perf_counter() - start
        if best_fit is None or wall < best_fit[0]:
            best_fit = (wall, result)
        raw = raw_step(name, config, device, min_seconds, min_steps)
        best_raw = raw if best_raw is None or raw["ips"] > best_raw["ips"] else best_raw
    wall, result = best_fit
    epochs, images = config.epochs, len(train)
    end_to_end = epochs * images / (wall + read_s)
    epoch_s = [h["seconds"] for h in result.history]
    # Epochs after the first, validation included: without compiling and autotuning, which a run pays once
    # (a 30-epoch study spreads them ten times thinner than these few epochs do).
    steady = images / (sum(epoch_s[1:]) / (len(epoch_s) - 1)) if len(epoch_s) > 1 else None
    # Validation alone, timed as fit runs it (inference mode, EVAL_BATCH_SIZE, no augmentation).
    speed = Speedups.of(config, device)
    net = prepare_model(build_model(name, pretrained=False), device, channels_last=speed.channels_last)
    val_device = val.to(device)
    evaluate(net, val_device, device=device, batch_size=EVAL_BATCH_SIZE, speed=speed)
    sync(device)
    start = time.perf_counter()
    evaluate(net, val_device, device=device, batch_size=EVAL_BATCH_SIZE, speed=speed)
    sync(device)
    val_s = time.perf_counter() - start
    return {"end_to_end_ips": end_to_end, "raw_ips": best_raw["ips"], "ratio": end_to_end / best_raw["ips"],
            "steady_ips": steady, "steady_ratio": steady / best_raw["ips"] if steady else None,
            "first_epoch_s": epoch_s[0],
            "input_s_per_epoch": input_path_seconds(train.to(device), config, device, name),
            "train_s_per_epoch": sum(epoch_s) / epochs - val_s, "val_s_per_epoch": val_s,
            "other_s_per_epoch": (wall - sum(epoch_s)) / epochs, "runtime": result.runtime}


def variant_config(base: TrainConfig, variant: str, backend: str) -> TrainConfig:
    if variant not in VARIANTS:
        raise ValueError(f"variant {variant!r} is unknown; choose from {', '.join(VARIANTS)}.")
    return replace(base, fused_optimizer="fused" in variant, compile=backend if "compiled" in variant else None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda[:N]")
    parser.add_argument("--size", type=int, default=None, help="crop side in px (64 on the CPU, 224 on a GPU)")
    parser.add_argument("--batch-size", type=int, default=None, help="32 on the CPU, 256 on a GPU")
    parser.add_argument("--images", type=int, default=None, help="training crops (256 on the CPU, 8192 on a GPU)")
    parser.add_argument("--epochs", type=int, default=None, help="2 on the CPU, 3 on a GPU")
    parser.add_argument("--checkpoint-every", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=2, help="alternating timings of each kind; best kept")
    parser.add_argument("--min-seconds", type=float, default=None, help="raw-step timing floor (3 CPU, 2 GPU)")
    parser.add_argument("--min-steps", type=int, default=10, help="raw steps timed at least")
    parser.add_argument("--decode-files", type=int, default=256, help="PNG frames decoded to time decoding")
    parser.add_argument("--models", nargs="+", default=list(MODEL_NAMES), choices=MODEL_NAMES)
    parser.add_argument("--no-fused", action="store_true", help="loop with the default (foreach) optimizer")
    parser.add_argument("--variants", default="", help=f"comma-separated raw-step variants of {', '.join(VARIANTS)}")
    parser.add_argument("--compile-backend", default="inductor",
                        help="torch.compile backend of the compiled variants (eager/aot_eager only trace)")
    parser.add_argument("--loops", default="default",
                        help="comma-separated loops to time: default (the TrainConfig defaults), compiled; or none")
    parser.add_argument("--json", action="store_true", help="print one JSON line per result")
    args = parser.parse_args(argv)
    variants = [v for v in args.variants.split(",") if v]
    loop_labels = [v for v in args.loops.split(",") if v and v != "none"]
    if set(variants) - set(VARIANTS) or set(loop_labels) - {"default", "compiled"}:
        parser.error(f"--variants takes {', '.join(VARIANTS)}; --loops takes default, compiled or none")
    device = select_device(args.device)
    with kernel_settings(device):  # the raw step and validation are timed under the settings `fit` trains with
        return measure(args, device, variants, loop_labels)


def measure(args: argparse.Namespace, device: torch.device, variants: list[str], loop_labels: list[str]) -> int:
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
        decoded, decode_per_crop, read_per_crop = decode_timing(min(args.decode_files, images + val_n), size,
                                                                Path(tmp))
    crops = tiled(decoded, images + val_n)
    train, val = crops.select(range(images)), crops.select(range(images, images + val_n))
    read_s = read_per_crop * len(crops)
    if gpu:
        torch.empty(1, device=device)  # the CUDA context is process start-up, not the upload
        sync(device)
    start = time.perf_counter()
    train.to(device)
    sync(device)
    upload_s = time.perf_counter() - start

    def emit(record: dict) -> None:
        if args.json:
            print(json.dumps(record), flush=True)

    print(f"torch {torch.__version__} (CUDA {torch.version.cuda}); device {where}; {images} training + {val_n} "
          f"validation crops of {size} px, batch {batch}, "
          f"{epochs} epochs, checkpoint every {args.checkpoint_every}, augmentation on, best of {args.repeats}")
    print(f"crops (measured on {len(decoded)} PNG frames): decode once per manifest {decode_per_crop * 1e3:.2f} ms a "
          f"crop ({1 / decode_per_crop:.0f} crops/s); read from the crop cache {read_per_crop * 1e6:.1f} us a crop, "
          f"{read_s:.3f} s for these (counted in every run below); upload to {device.type} once a run "
          f"{upload_s:.3f} s ({train.images.numel() / 2**20:.0f} MiB uint8)")
    emit({"part": "crops", "device": where, "decode_s_per_crop": decode_per_crop, "cache_read_s_per_crop":
          read_per_crop, "upload_s": upload_s, "size": size, "batch_size": batch, "images": images, "epochs": epochs})
    base = {name: TrainConfig(model_name=name, epochs=epochs, batch_size=batch, input_size=size, pretrained=False,
                              early_stopping_patience=None, device=str(device), checkpoint_every=args.checkpoint_every,
                              fused_optimizer=not args.no_fused) for name in args.models}
    loops = {"default": base, "compiled": {n: replace(c, compile=args.compile_backend) for n, c in base.items()}}
    for label in loop_labels:
        configs = loops[label]
        speed = Speedups.of(next(iter(configs.values())), device)
        print(f"(b) loop vs raw, {label}: bf16 {speed.bf16}, channels_last {speed.channels_last}, fused optimizer "
              f"{speed.fused_optimizer}, compile {speed.compile}   goal >= {goal}")
        print(f"{'model':16s} {'loop':>8s} {'raw':>8s} {'ratio':>6s} {'steady':>6s} | per epoch: {'input':>6s} "
              f"{'train':>6s} {'val':>6s} {'ckpt+setup':>10s} {'epoch 1':>7s}   (img/s; s)")
        for name, config in configs.items():
            r = loop(name, config, train, val, device, repeats=args.repeats, min_seconds=min_seconds,
                     min_steps=args.min_steps, read_s=read_s)
            flag = "" if r["ratio"] >= goal else "  BELOW GOAL"
            steady = f"{r['steady_ratio']:6.2f}" if r["steady_ratio"] is not None else f"{'-':>6s}"
            print(f"{name:16s} {r['end_to_end_ips']:8.1f} {r['raw_ips']:8.1f} {r['ratio']:6.2f} {steady} | "
                  f"{r['input_s_per_epoch']:17.3f} {r['train_s_per_epoch']:6.2f} {r['val_s_per_epoch']:6.3f} "
                  f"{r['other_s_per_epoch']:10.2f} {r['first_epoch_s']:7.2f}{flag}", flush=True)
            emit({"part": "loop", "variant": label, "model": name, "goal": goal, **r})
    if variants:
        compiled = any("compiled" in v for v in variants)
        print(f"(a) raw step (forward + backward + optimizer) at batch {batch}, {size} px, on random tensors"
              + (f"; compiled = torch.compile backend {args.compile_backend}" if compiled else ""))
        print(f"{'model':16s} {'variant':>15s} {'img/s':>9s} {'warm-up s':>10s}")
        for name in args.models:
            for variant in variants:
                config = variant_config(base[name], variant, args.compile_backend)
                r = raw_step(name, config, device, min_seconds, args.min_steps)
                print(f"{name:16s} {variant:>15s} {r['ips']:9.1f} {r['warmup_s']:10.1f}", flush=True)
                emit({"part": "raw", "model": name, "variant": variant, "applied": asdict(Speedups.of(config, device)),
                      **r})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
