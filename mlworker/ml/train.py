"""Training loop with atomic checkpoints, exact CPU resume, early stopping and cancellation.

On a GPU the whole input path stays on the device: the uint8 crops are uploaded once per run, batches are gathered,
augmented (parameters drawn by a CUDA generator) and normalised there, and the step runs in bf16 with channels_last
and a fused optimizer (each a TrainConfig option; see `Speedups`).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import platform
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import timm
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from .augment import BatchAugment
from .config import OPTIMIZERS, TrainConfig
from .data import CropTensors, batches
from mlworker.finite import undefined_as_null
from .models import build_model, model_normalization

__all__ = [
    "OPTIMIZERS",
    "CHECKPOINT_FORMAT",
    "TrainConfig",
    "FitResult",
    "Speedups",
    "make_optimizer",
    "select_device",
    "runtime_settings",
    "autocast",
    "train_one_epoch",
    "evaluate",
    "predict_proba",
    "roc_auc",
    "fit",
    "kernel_settings",
    "epoch_progress",
    "load_trained",
    "prepare_model",
]

_logger = logging.getLogger(__name__)

# Bumped when the checkpoint layout changes, so old files are recognised instead of mis-read.
CHECKPOINT_FORMAT = 1
# Settings that may differ between an interrupted run and its resumption (extending a run is legitimate).
_RESUME_MAY_CHANGE = frozenset({"epochs", "device", "early_stopping_patience", "checkpoint_every", "bf16",
                                "channels_last", "fused_optimizer", "compile"})
# Validation runs at inference speed: no augmentation, no gradients, batches this large whatever the training batch.
EVAL_BATCH_SIZE = 256
DIVERGED = "not finite: training diverged; launch again with a lower learning rate"
ONE_CLASS = "one class in validation"


@dataclass
class FitResult:
    """Outcome of `fit`; `history` holds one record per finished epoch, including epochs from before a resume."""

    best_checkpoint: Path | None  # None only if no epoch produced a finite validation loss
    last_checkpoint: Path
    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int | None = None
    best_val_loss: float = math.inf
    stopped_early: bool = False
    cancelled: bool = False
    diverged: bool = False  # the training loss stopped being finite; the run stopped there
    resumed_from_epoch: int = 0  # last epoch found in last.pt at start; 0 for a fresh run
    device: str = "cpu"
    # Training crops per second of epoch wall time (validation included) over the epochs run in this call;
    # None when none finished. Epochs x training crops / this is how long a run takes.
    images_per_s: float | None = None
    # What a reproduction must match beyond code, data and seed: see `runtime_settings`.
    runtime: dict[str, Any] = field(default_factory=dict)


def select_device(pref: str = "auto") -> torch.device:
    """'auto' -> CUDA when available, else CPU; an explicit 'cuda' fails loudly if there is no GPU."""
    if pref == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(pref)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"Device {pref!r} requested but CUDA is not available here; use device='auto' or 'cpu'.")
    return device


@dataclass(frozen=True)
class Speedups:
    """What a run uses to go fast on its device; recorded on the run's runtime (see `runtime_settings`)."""

    bf16: bool  # bf16 autocast of forward passes
    channels_last: bool  # NHWC weights and inputs, what tensor-core convolutions want
    fused_optimizer: bool  # one fused kernel for the optimizer step instead of a loop over parameters
    compile: str | None  # torch.compile backend of the training step, None for eager

    @classmethod
    def of(cls, config: TrainConfig | None, device: torch.device) -> Speedups:
        """The config's options as they apply on `device`: bf16, channels_last and fused kernels on CUDA only,
        so CPU runs stay exactly reproducible fp32. Without a config, the defaults (evaluation, explanations)."""
        cuda = device.type == "cuda"
        return cls(bf16=cuda and (config is None or config.bf16),
                   channels_last=cuda and (config is None or config.channels_last),
                   fused_optimizer=cuda and config is not None and config.fused_optimizer,
                   compile=None if config is None else config.compile)


def autocast(device: torch.device, enabled: bool = True) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA, nothing on the CPU: the precision training, evaluation and explanations run in."""
    # bf16 keeps fp32's exponent range, so no GradScaler is needed; the CPU stays fp32 for exact reproducibility.
    if enabled and device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def prepare_model(model: nn.Module, device: torch.device, *, channels_last: bool | None = None) -> nn.Module:
    """Move `model` to `device`, channels_last by default on CUDA (what fit and load_trained run with)."""
    model = model.to(device)
    if channels_last is None:
        channels_last = device.type == "cuda"
    if channels_last:
        # Convolutions on tensor cores run fastest in NHWC.
        model = model.to(memory_format=torch.channels_last)
    return model


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve via average ranks (Mann-Whitney U); nan when only one class is present."""
    labels = np.asarray(labels).astype(bool)
    scores = np.asarray(scores, dtype=np.float64)
    n_pos = int(labels.sum())
    n_neg = labels.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return math.nan
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    # 1-based rank of each distinct score, ties sharing the mean of the ranks they span.
    avg_rank = np.cumsum(counts) - (counts - 1) / 2.0
    rank_sum_pos = avg_rank[inverse][labels].sum()
    return float((rank_sum_pos - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


class Stopped(Exception):
    """Training was asked to stop in the middle of an epoch."""


def train_one_epoch(
    model: nn.Module,
    crops: CropTensors,
    *,
    optimizer: torch.optim.Optimizer,
    config: TrainConfig,
    device: torch.device,
    generator: torch.Generator,
    augment: BatchAugment | None,
    should_stop: Callable[[], bool] | None = None,
    on_batch: Callable[[int, int, int], None] | None = None,
) -> dict[str, float]:
    """One pass over `crops` in shuffled mini-batches; returns mean loss, accuracy and sample count.

    `should_stop()` is asked before every batch; True abandons the epoch by raising `Stopped`.
    `on_batch(batches_done, batches_total, images_done)` is called after every batch.
    """
    model.train()
    if augment is not None:
        augment.train()
    mean, std = model_normalization(model)
    speed = Speedups.of(config, device)
    # A trailing batch of one sample would make BatchNorm fail in training mode.
    drop_last = len(crops) > 1 and len(crops) % config.batch_size == 1
    total = len(crops) // config.batch_size if drop_last else math.ceil(len(crops) / config.batch_size)
    # Accumulated on the device: a .item() per batch would stall the GPU queue on every step.
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    correct = torch.zeros((), dtype=torch.int64, device=device)
    n = 0
    for done, (x, y, _) in enumerate(batches(
        crops, batch_size=config.batch_size, shuffle=True, generator=generator, device=device,
        mean=mean, std=std, augment=augment, channels_last=speed.channels_last, drop_last=drop_last,
    ), start=1):
        if should_stop is not None and should_stop():
            raise Stopped
        with autocast(device, speed.bf16):
            logits = model(x)
        loss = F.cross_entropy(logits.float(), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        loss_sum += loss.detach() * y.numel()
        correct += (logits.detach().argmax(1) == y).sum()
        n += y.numel()
        if on_batch is not None:
            on_batch(done, total, n)
    if n == 0:
        raise ValueError("The training set yielded no batch; it needs at least 2 crops.")
    return {"loss": loss_sum.item() / n, "accuracy": correct.item() / n, "n": n}


def _logits(
    model: nn.Module, crops: CropTensors, *, device: torch.device, batch_size: int,
    mean: tuple[float, ...] | None, std: tuple[float, ...] | None, speed: Speedups | None = None,
) -> torch.Tensor:
    """Float32 logits (N, classes) on the CPU, in the order of `crops`."""
    if mean is None or std is None:
        mean, std = model_normalization(model)
    speed = speed or Speedups.of(None, device)
    model.eval()
    outputs: list[torch.Tensor] = []
    with torch.inference_mode():
        for x, _, _ in batches(
            crops, batch_size=batch_size, shuffle=False, generator=None, device=device,
            mean=mean, std=std, augment=None, channels_last=speed.channels_last,
        ):
            with autocast(device, speed.bf16):
                outputs.append(model(x).float())
    if not outputs:
        return torch.empty((0, 2))
    return torch.cat(outputs).cpu()


def evaluate(
    model: nn.Module,
    crops: CropTensors,
    *,
    device: torch.device,
    batch_size: int = 64,
    mean: tuple[float, ...] | None = None,
    std: tuple[float, ...] | None = None,
    speed: Speedups | None = None,
) -> dict[str, Any]:
    """Loss, accuracy, rank AUC and P(CTS) per sample (`probs`, in crop order) without augmentation.

    `speed` (bf16, channels_last) defaults to what a run uses on `device` by default."""
    logits = _logits(model, crops, device=device, batch_size=batch_size, mean=mean, std=std, speed=speed)
    labels = crops.labels.cpu()
    n = len(crops)
    if n == 0:
        return {"loss": math.nan, "accuracy": math.nan, "auc": math.nan, "probs": np.empty(0), "n": 0}
    probs = torch.softmax(logits, dim=1)[:, 1].double().numpy()
    return {
        "loss": F.cross_entropy(logits, labels).item(),
        "accuracy": (logits.argmax(1) == labels).double().mean().item(),
        "auc": roc_auc(labels.numpy(), probs),
        "probs": probs,
        "n": n,
    }


def predict_proba(model: nn.Module, crops: CropTensors, *, device: torch.device, batch_size: int = 64) -> np.ndarray:
    """P(CTS) for each crop, in crop order."""
    logits = _logits(model, crops, device=device, batch_size=batch_size, mean=None, std=None)
    return torch.softmax(logits, dim=1)[:, 1].double().numpy()


def make_optimizer(model: nn.Module, config: TrainConfig, *, fused: bool = False) -> torch.optim.Optimizer:
    """The config's optimizer over the trainable parameters; `fused` (CUDA) updates them all in one kernel."""
    params = [p for p in model.parameters() if p.requires_grad]
    # None, not False: torch then picks its multi-tensor (foreach) kernels where they apply.
    kernels = {"fused": True} if fused else {}
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay, **kernels)
    if config.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay, **kernels)
    return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay,
                           **kernels)


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # seeds every CUDA device too


def runtime_settings(device: torch.device, speed: Speedups | None = None) -> dict[str, Any]:
    """Settings that change a run's numbers: the same code, data and seed on 2 CPU threads and on 1 give
    different floating-point sums (a frame AUC moved from 0.662 to 0.676), so a reproduction must match them.
    With `speed`, also the precision and kernels the run used (bf16, channels_last, fused optimizer, compile)."""
    settings = {
        "device": str(device),
        "torch_threads": torch.get_num_threads(),
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
        "cudnn_benchmark": bool(torch.backends.cudnn.benchmark),
        "cudnn_deterministic": bool(torch.backends.cudnn.deterministic),
    }
    if speed is not None:
        settings.update(asdict(speed))
    return settings


@contextlib.contextmanager
def kernel_settings(device: torch.device) -> Iterator[None]:
    """Deterministic kernels on the CPU, autotuned cuDNN on CUDA, as `fit` trains; restores the process-wide flags
    afterwards. (A benchmark of the model's own speed runs under the same settings.)"""
    previous = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
        torch.backends.cudnn.benchmark,
    )
    if device.type == "cpu":
        torch.use_deterministic_algorithms(True, warn_only=True)
    else:
        # Fixed input size: the autotuner pays off; GPU runs are not bitwise reproducible anyway.
        torch.backends.cudnn.benchmark = True
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous[0], warn_only=previous[1])
        torch.backends.cudnn.benchmark = previous[2]


def library_versions() -> dict[str, str]:
    """Versions of the code and libraries that train a model; saved in every checkpoint and registry entry."""
    try:
        from importlib.metadata import version

        code = version("cts-study")
    except Exception:  # running from a source tree that is not installed
        code = "unknown"
    return {
        "checkpoint_format": str(CHECKPOINT_FORMAT),
        "cts_study": code,
        "python": platform.python_version(),
        # str(): torch.__version__ is a TorchVersion object, which weights_only loading refuses.
        "torch": str(torch.__version__),
        "torchvision": str(torchvision.__version__),
        "timm": str(timm.__version__),
        "numpy": str(np.__version__),
    }


def _rng_states(shuffle_gen: torch.Generator, augment_gen: torch.Generator) -> dict[str, Any]:
    # Stored as tensors and plain tuples so checkpoints load with torch.load(weights_only=True).
    np_kind, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    return {
        "torch_cpu": torch.get_rng_state(),
        "torch_cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
        "shuffle": shuffle_gen.get_state(),
        "augment": augment_gen.get_state(),
        "numpy": {"kind": np_kind, "keys": torch.from_numpy(np_keys.astype(np.int64)), "pos": int(np_pos),
                  "has_gauss": int(np_has_gauss), "gauss": float(np_gauss)},
        "python": random.getstate(),
    }


def _restore_rng_states(states: dict[str, Any], shuffle_gen: torch.Generator, augment_gen: torch.Generator,
                        *, reseed_augment: int) -> None:
    torch.set_rng_state(states["torch_cpu"])
    if states.get("torch_cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["torch_cuda"])
    shuffle_gen.set_state(states["shuffle"])
    try:
        augment_gen.set_state(states["augment"])
    except RuntimeError:
        # The augmentation draws on the training device; a run resumed on another kind of device (its CUDA
        # state does not fit a CPU generator) continues from a fresh seed instead: the batch order, from the
        # CPU shuffle generator, is unchanged.
        _logger.warning("Augmentation RNG state is from another device; reseeding it with %d", reseed_augment)
        augment_gen.manual_seed(reseed_augment)
    np_state = states["numpy"]
    np.random.set_state((np_state["kind"], np_state["keys"].numpy().astype(np.uint32), np_state["pos"],
                         np_state["has_gauss"], np_state["gauss"]))
    version, internal, gauss_next = states["python"]
    random.setstate((version, tuple(internal), gauss_next))


def _save_atomic(payload: dict[str, Any], path: Path) -> None:
    """Write to a temp file in the same directory, fsync, then rename: a crash never leaves a torn checkpoint."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as fh:
        torch.save(payload, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _load_checkpoint(path: Path) -> dict[str, Any]:
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    fmt = int(ckpt.get("versions", {}).get("checkpoint_format", -1))
    if fmt != CHECKPOINT_FORMAT:
        raise ValueError(
            f"{path} has checkpoint format {fmt}, this code reads format {CHECKPOINT_FORMAT}; "
            "train again or load it with the code version that wrote it."
        )
    return ckpt


def _check_resumable(saved: dict[str, Any], config: TrainConfig, path: Path) -> None:
    current = config.to_dict()
    diffs = [f"{k}: {saved.get(k)!r} in checkpoint vs {current[k]!r} now"
             for k in current if k not in _RESUME_MAY_CHANGE and saved.get(k) != current[k]]
    if diffs:
        raise ValueError(
            f"{path} belongs to a different run ({'; '.join(diffs)}). Use a new checkpoint_dir, "
            "or delete that last.pt to start this run from scratch."
        )


def _batch_reporter(
    on_progress: Callable[[dict[str, Any]], None], *, epoch: int, epochs: int, started: float,
    history: list[dict[str, Any]],
) -> Callable[[int, int, int], None]:
    """train_one_epoch's per-batch hook, turned into `epoch_progress` records for `on_progress`."""
    def on_batch(done: int, total: int, images: int) -> None:
        on_progress(epoch_progress(epoch=epoch, epochs=epochs, batches_done=done, batches_total=total, images=images,
                                   elapsed_s=time.perf_counter() - started, history=history))

    return on_batch


def fit(
    config: TrainConfig,
    train: CropTensors,
    val: CropTensors,
    *,
    checkpoint_dir: Path,
    on_epoch: Callable[[dict[str, float]], bool | None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    on_progress: Callable[[dict[str, Any]], None] | None = None,
) -> FitResult:
    """Train `config.model_name` on `train`, select on `val` loss; resumes from checkpoint_dir/last.pt if present.

    `on_epoch(record)` runs after each epoch; returning False cancels the run. last.pt (and best.pt, whose
    weights are held in memory until then) are written every `config.checkpoint_every` epochs and at the end,
    so a crash resumes at most that many epochs back. A metric that is not finite is recorded as None with
    `<name>_undefined` saying why (a validation set of one class has no AUC; divergence makes every loss NaN).
    `should_stop()`, asked before every batch, cancels within the epoch (which is then dropped).
    `on_progress(progress)` gets `epoch_progress(...)` after every batch; throttle any I/O in it.
    """
    if len(train) < 2:
        raise ValueError(f"fit needs at least 2 training crops, got {len(train)}.")
    if len(val) == 0:
        raise ValueError("fit needs a non-empty validation set: it drives model selection and early stopping.")
    for name, crops in (("train", train), ("val", val)):
        if crops.size != config.input_size:
            raise ValueError(
                f"{name} crops are {crops.size} px but config.input_size is {config.input_size}; "
                f"load them with load_crops(..., size={config.input_size})."
            )
    device = select_device(config.device)
    checkpoint_dir = Path(checkpoint_dir)
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    last_path, best_path = checkpoint_dir / "last.pt", checkpoint_dir / "best.pt"

    with kernel_settings(device):
        _seed_everything(config.seed)
        speed = Speedups.of(config, device)
        model = prepare_model(
            build_model(config.model_name, num_classes=2, pretrained=config.pretrained,
                        weights_file=config.weights_file),
            device, channels_last=speed.channels_last,
        )
        optimizer = make_optimizer(model, config, fused=speed.fused_optimizer)
        # Separate streams: changing the augmentation settings must not change the batch order. The shuffle is
        # drawn on the CPU (one permutation an epoch); the augmentation on the training device, per batch.
        shuffle_gen = torch.Generator().manual_seed(config.seed)
        augment_gen = torch.Generator(device=device).manual_seed(config.seed + 1)
        augment = BatchAugment(generator=augment_gen) if config.augment else None

        result = FitResult(best_checkpoint=None, last_checkpoint=last_path, device=str(device),
                           runtime=runtime_settings(device, speed))
        epochs_without_improvement = 0
        start_epoch = 0
        if last_path.exists():
            ckpt = _load_checkpoint(last_path)
            _check_resumable(ckpt["config"], config, last_path)
            model.load_state_dict(ckpt["model"])
            optimizer.load_state_dict(ckpt["optimizer"])
            start_epoch = int(ckpt["epoch"])
            _restore_rng_states(ckpt["rng"], shuffle_gen, augment_gen, reseed_augment=config.seed + 1 + start_epoch)
            result.history = list(ckpt["history"])
            result.best_epoch = ckpt["best_epoch"]
            result.best_val_loss = float(ckpt["best_val_loss"])
            result.best_checkpoint = best_path if best_path.exists() and result.best_epoch is not None else None
            result.stopped_early = bool(ckpt["stopped_early"])
            result.diverged = bool(ckpt.get("diverged", False))
            result.resumed_from_epoch = start_epoch
            epochs_without_improvement = int(ckpt["epochs_without_improvement"])
            _logger.info("Resuming %s from %s after epoch %d", config.model_name, last_path, start_epoch)
            if result.stopped_early or result.diverged:
                return result

        # Uploaded once: every epoch gathers its batches on the device (no-ops on the CPU).
        train, val = train.to(device), val.to(device)
        # The compiled step shares the model's parameters; checkpoints and validation use the plain module
        # (no recompiling for eval mode and the validation batch size).
        step_model = torch.compile(model, backend=config.compile, dynamic=False) if config.compile else model
        run_seconds, run_images = 0.0, 0
        val_classes = int(val.labels.unique().numel())
        best_state: dict[str, torch.Tensor] | None = None
        for epoch in range(start_epoch + 1, config.epochs + 1):
            started = time.perf_counter()
            on_batch = (None if on_progress is None else
                        _batch_reporter(on_progress, epoch=epoch, epochs=config.epochs, started=started,
                                        history=result.history))
            try:
                train_metrics = train_one_epoch(
                    step_model, train, optimizer=optimizer, config=config, device=device,
                    generator=shuffle_gen, augment=augment, should_stop=should_stop, on_batch=on_batch,
                )
            except Stopped:
                # The unfinished epoch is dropped; last.pt still holds the previous one.
                result.cancelled = True
                break
            val_metrics = evaluate(model, val, device=device, batch_size=EVAL_BATCH_SIZE, speed=speed)
            record = undefined_as_null({
                "epoch": epoch,
                "train_loss": train_metrics["loss"],
                "train_accuracy": train_metrics["accuracy"],
                "val_loss": val_metrics["loss"],
                "val_accuracy": val_metrics["accuracy"],
                "val_auc": val_metrics["auc"],
                "seconds": time.perf_counter() - started,
            }, {"val_auc": ONE_CLASS if val_classes < 2 else DIVERGED, "*": DIVERGED})
            result.history.append(record)
            run_seconds += record["seconds"]
            run_images += len(train)
            result.images_per_s = run_images / run_seconds if run_seconds > 0 else None
            improved = record["val_loss"] is not None and record["val_loss"] < result.best_val_loss
            if improved:
                result.best_val_loss, result.best_epoch = record["val_loss"], epoch
                epochs_without_improvement = 0
                # Kept until the next checkpoint: best.pt and last.pt are written together, best first.
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            else:
                epochs_without_improvement += 1
            patience = config.early_stopping_patience
            result.stopped_early = patience is not None and epochs_without_improvement >= patience
            # NaN weights never recover: stop instead of training on them.
            result.diverged = record["train_loss"] is None
            ending = result.stopped_early or result.diverged or epoch == config.epochs
            if ending or epoch % config.checkpoint_every == 0:
                _write_checkpoints(
                    model=model, optimizer=optimizer, epoch=epoch, result=result, config=config,
                    epochs_without_improvement=epochs_without_improvement, best_state=best_state,
                    rng=_rng_states(shuffle_gen, augment_gen), best_path=best_path, last_path=last_path)
                best_state = None
            _logger.info("%s epoch %d: %s", config.model_name, epoch, record)
            # A cancel between checkpoints loses the epochs since the last one: the run ends anyway.
            if on_epoch is not None and on_epoch(dict(record)) is False:
                result.cancelled = True
                break
            if result.stopped_early or result.diverged:
                break
    return result


def _write_checkpoints(*, model: nn.Module, optimizer: torch.optim.Optimizer, epoch: int, result: FitResult,
                       config: TrainConfig, epochs_without_improvement: int, best_state: dict | None,
                       rng: dict[str, Any], best_path: Path, last_path: Path) -> None:
    """best.pt (when a better epoch came since the last checkpoint: `best_state`), then last.pt."""
    payload = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "epoch": epoch,
        "best_epoch": result.best_epoch,
        "best_val_loss": result.best_val_loss,
        "epochs_without_improvement": epochs_without_improvement,
        "stopped_early": result.stopped_early,
        "diverged": result.diverged,
        "history": result.history,
        "config": config.to_dict(),
        "rng": rng,
        "versions": library_versions(),
    }
    if best_state is not None:
        # best.pt first: if the process dies between the writes, last.pt still points before this epoch.
        # No history in it: wall-clock timings would change its bytes (and the registered weights'
        # SHA-256) on every rerun; they stay in last.pt and on the run.
        best = {"model": best_state, "epoch": result.best_epoch,
                **{k: payload[k] for k in ("best_epoch", "best_val_loss", "config", "versions")}}
        _save_atomic(best, best_path)
        result.best_checkpoint = best_path
    _save_atomic(payload, last_path)


def epoch_progress(
    *, epoch: int, epochs: int, batches_done: int, batches_total: int, images: int, elapsed_s: float,
    history: list[dict[str, Any]],
) -> dict[str, Any]:
    """Where training stands within an epoch: batches, throughput and the time left in the epoch and the run.

    The run's remaining epochs are timed by the finished epochs' mean wall time (validation included) when
    there are any, else by this epoch's batch rate. Early stopping can end the run sooner than `run_eta_s`.
    """
    images_per_s = images / elapsed_s if elapsed_s > 0 else None
    epoch_eta_s = elapsed_s / batches_done * (batches_total - batches_done) if batches_done else None
    timed = [h["seconds"] for h in history if h.get("seconds")]
    per_epoch_s = sum(timed) / len(timed) if timed else (elapsed_s / batches_done * batches_total
                                                           if batches_done else None)
    run_eta_s = (epoch_eta_s + (epochs - epoch) * per_epoch_s
                 if epoch_eta_s is not None and per_epoch_s is not None else None)
    return {"epoch": epoch, "epochs": epochs, "batch": batches_done, "batches": batches_total, "images": images,
            "elapsed_s": elapsed_s, "images_per_s": images_per_s, "epoch_eta_s": epoch_eta_s, "run_eta_s": run_eta_s}


def load_trained(checkpoint_path: Path, *, device: torch.device | str) -> tuple[nn.Module, TrainConfig]:
    """Model (eval mode, on `device`) and TrainConfig from a best.pt/last.pt written by `fit`."""
    ckpt = _load_checkpoint(Path(checkpoint_path))
    config = TrainConfig.from_dict(ckpt["config"])
    device = torch.device(device)
    # Random init is fine here: every weight is overwritten by the checkpoint, and no download is needed.
    model = build_model(config.model_name, num_classes=2, pretrained=False)
    model.load_state_dict(ckpt["model"])
    return prepare_model(model, device).eval(), config
