"""Training throughput: the full data pipeline (`train_one_epoch`) vs. the bare model step on ready-made tensors.

The ratio says how much of the model's own speed the pipeline keeps (uint8 crops on the CPU, per-batch transfer,
augmentation and normalisation on the device). Goal: >= 0.85 on a GPU, >= 0.7 on the CPU.

    .venv/bin/python bench/bench_training.py                      # CPU default: 224 px, 64 images, batch 32
    .venv/bin/python bench/bench_training.py --images 4096 --batch-size 64 --device cuda
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from mlworker.ml import (  # noqa: E402
    INPUT_SIZE,
    MODEL_NAMES,
    BatchAugment,
    CropTensors,
    TrainConfig,
    build_model,
    prepare_model,
    select_device,
    train_one_epoch,
)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def synthetic_crops(n: int, size: int, seed: int = 0) -> CropTensors:
    """Random uint8 grey crops with balanced labels, shaped like `load_crops` output."""
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 1, size, size), dtype=torch.uint8, generator=g)
    return CropTensors(images, torch.arange(n) % 2, torch.arange(n) // 4, torch.arange(n))


class _Bench:
    """One model and optimizer shared by both measurements, so they differ only in where the batches come from."""

    def __init__(self, name: str, crops: CropTensors, batch_size: int, device: torch.device) -> None:
        torch.manual_seed(0)
        self.device = device
        self.crops = crops
        self.model = prepare_model(build_model(name, pretrained=False), device).train()
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=1e-4)
        self.config = TrainConfig(model_name=name, batch_size=batch_size, input_size=crops.size, pretrained=False,
                                  device=str(device))
        self.augment = BatchAugment(generator=torch.Generator().manual_seed(1))
        self.generator = torch.Generator().manual_seed(0)
        self.x = torch.randn(batch_size, 3, crops.size, crops.size, device=device)
        if device.type == "cuda":
            self.x = self.x.contiguous(memory_format=torch.channels_last)
        self.y = torch.randint(0, 2, (batch_size,), device=device)
        self.steps = len(crops) // batch_size
        # Warm-up (allocator, cuDNN autotuning, first-call overheads), not timed.
        self._bare_step()
        self._epoch(crops.select(range(batch_size)))
        _sync(device)

    def _bare_step(self) -> None:
        with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=self.device.type == "cuda"):
            logits = self.model(self.x)
        loss = F.cross_entropy(logits.float(), self.y)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()

    def _epoch(self, crops: CropTensors) -> int:
        metrics = train_one_epoch(self.model, crops, optimizer=self.optimizer, config=self.config,
                                  device=self.device, generator=self.generator, augment=self.augment)
        return int(metrics["n"])

    def model_images_per_second(self) -> float:
        """Forward + backward + optimizer step on tensors already on the device: the model's own upper bound."""
        _sync(self.device)
        start = time.perf_counter()
        for _ in range(self.steps):
            self._bare_step()
        _sync(self.device)
        return self.steps * self.x.shape[0] / (time.perf_counter() - start)

    def pipeline_images_per_second(self) -> float:
        """Full `train_one_epoch` over the uint8 crops with augmentation on."""
        _sync(self.device)
        start = time.perf_counter()
        n = self._epoch(self.crops)
        _sync(self.device)
        return n / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=INPUT_SIZE, help="crop side in px (default %(default)s)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--images", type=int, default=None,
                        help="crops per timed epoch (default 64 on the CPU, 4096 on a GPU)")
    parser.add_argument("--repeats", type=int, default=2,
                        help="alternating timings of each kind; the best is kept, which damps noise from other "
                             "processes (default %(default)s)")
    parser.add_argument("--models", nargs="+", default=list(MODEL_NAMES), choices=MODEL_NAMES)
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda[:N]")
    parser.add_argument("--json", action="store_true", help="also print one JSON line with the results")
    args = parser.parse_args(argv)

    device = select_device(args.device)
    if args.images is None:
        # The CPU default keeps all three models to about two minutes on 2 cores.
        args.images = 4096 if device.type == "cuda" else 64
    if args.images < args.batch_size or args.repeats < 1:
        parser.error("--images must be at least --batch-size, and --repeats at least 1")
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # as fit() does for the fixed input size
    crops = synthetic_crops(args.images, args.size)
    goal = 0.85 if device.type == "cuda" else 0.7
    name_of_device = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU x{torch.get_num_threads()}"
    print(f"device {name_of_device}; {args.images} crops of {args.size} px, batch {args.batch_size}, "
          f"augmentation on, best of {args.repeats}")
    print(f"{'model':18s} {'pipeline img/s':>15s} {'model img/s':>12s} {'ratio':>6s}  goal >= {goal}")
    results = []
    for name in args.models:
        bench = _Bench(name, crops, args.batch_size, device)
        bare = full = 0.0
        for _ in range(args.repeats):
            bare = max(bare, bench.model_images_per_second())
            full = max(full, bench.pipeline_images_per_second())
        ratio = full / bare
        results.append({"model": name, "pipeline_ips": full, "model_ips": bare, "ratio": ratio})
        flag = "" if ratio >= goal else "  BELOW GOAL"
        print(f"{name:18s} {full:15.1f} {bare:12.1f} {ratio:6.2f}{flag}", flush=True)
    if args.json:
        print(json.dumps({"device": name_of_device, "size": args.size, "batch_size": args.batch_size,
                          "images": args.images, "repeats": args.repeats, "results": results}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
