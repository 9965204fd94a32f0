"""The training run a worker executes: claim, train, evaluate on the test hands, register the weights.

Worker-only (imports torch through mlworker.ml); the web process queues runs through `services`.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import numpy as np
import torch
from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from mlworker import threads
from mlworker.finite import json_safe
from mlworker.ml import CropSample, CropTensors, ImageChanged, TrainConfig, WeightsUnavailable, fit, library_versions
from mlworker.ml import load_crops, load_trained, predict_proba, select_device
from mlworker.ml.crop_cache import cache_file, cached_crop_images
from mlworker.ml.normalise import normalise_by_site
from mlworker.stats import evaluate_predictions
from studyapp.common.jobs import Lease, LeaseLost, lease_claim, lease_kept
from studyapp.common.storage import local_path
from studyapp.dashboards.experiment_external import external_evaluation
from studyapp.dashboards.experiment_selectors import hand_stages
from studyapp.dashboards.experiment_summary import evaluation_summary

from .models import TrainingRun
from .services import TRAINING, code_version, experiment_compare_if_complete, fit_val_test, run_checkpoint_dir
from .splitting import NoValidationSplit
from .weights import expected_weights_file

# How often a running run touches its row (heartbeat, cancel check, progress): rarely enough to cost nothing.
CANCEL_POLL_S = 2.0


def _samples(entries: list[dict], cache: Path) -> list[CropSample]:
    return [CropSample(image_path=str(local_path(e["image"], cache)), box=tuple(e["box"]), label=e["label"],
                       hand_id=e["hand"], frame_id=e["frame"], sha256=e.get("image_sha256", "")) for e in entries]


def _crops(manifest: list[dict], manifest_hash: str, *, size: int, download_dir: Path,
           site_normalisation: str = "none", fit_set: list[dict] = ()):
    """The crops of a locked manifest, decoded once per (manifest, size) into CTS_CHECKPOINT_DIR/crops and
    shared by every run on it; returns `crops_of(entries)`, the CropTensors of those entries with their labels,
    and the record of the run's per-site normalisation (applied once to the decoded crops, fitted on `fit_set`).

    Manifests locked before frames were hashed name no pixels, so their crops are decoded afresh every time.
    """
    position = {e["frame"]: i for i, e in enumerate(manifest)}

    def decode() -> torch.Tensor:
        return load_crops(_samples(manifest, download_dir), size=size).images

    if all(e.get("image_sha256") for e in manifest):
        path = cache_file(Path(settings.CTS_CHECKPOINT_DIR) / "crops", manifest_hash=manifest_hash, size=size)
        images = cached_crop_images(path, [e["frame"] for e in manifest], decode)
    else:
        images = decode()
    normalisation = {"method": site_normalisation}
    if site_normalisation != "none":  # mlworker.ml.normalise: once, on the uint8 crops, before any batching
        fitting = {e["frame"] for e in fit_set}
        array, normalisation = normalise_by_site(images.numpy(), [e.get("site", "") for e in manifest],
                                                 np.array([e["frame"] in fitting for e in manifest]),
                                                 method=site_normalisation)
        images = torch.from_numpy(array)

    def crops_of(entries: list[dict]) -> CropTensors:
        # Labels come from the entries: a permuted-label control relabels the same pixels.
        return CropTensors(images[[position[e["frame"]] for e in entries]],
                           labels=torch.tensor([e["label"] for e in entries], dtype=torch.long),
                           hand_ids=torch.tensor([e["hand"] for e in entries], dtype=torch.long),
                           frame_ids=torch.tensor([e["frame"] for e in entries], dtype=torch.long))

    return crops_of, normalisation


def run_claim(*, run_id: int, task_id: str, worker: str) -> Lease | None:
    """Take a queued run, or one whose worker died (lease expired); None while a live worker has it."""
    return lease_claim(TRAINING, run_id, where=Q(cancel_requested=False), task_id=task_id, worker=worker, error="",
                       started_at=timezone.now(), heartbeat_at=timezone.now())


def _finish(lease: Lease, status: str, **fields) -> None:
    """End a run if still ours; the last run of its experiment to end also writes the comparison, in one commit."""
    with transaction.atomic():
        if lease.finish(status, finished_at=timezone.now(), **fields):
            experiment_compare_if_complete(experiment_id=TrainingRun.objects.values_list(
                "experiment_id", flat=True).get(pk=lease.pk))


def run_train(*, run_id: int, task_id: str, worker: str) -> str:
    """Train, evaluate on the test hands and register one model; progress and errors go on the run row."""
    lease = run_claim(run_id=run_id, task_id=task_id, worker=worker)
    if lease is None:
        return "not claimed"
    with lease_kept(lease):
        try:
            return _train(lease, TrainingRun.objects.select_related("experiment__split").get(pk=run_id))
        except LeaseLost:
            return "taken over"


def _train(lease: Lease, run: TrainingRun) -> str:
    run_id = run.pk
    split = run.experiment.split
    try:
        config = TrainConfig.from_dict(run.config)
        # The frozen manifest holds every frame, box and label: a run trains on it, whatever was edited since
        # the lock (launch refuses a split whose data changed; a run already going finishes as it began).
        fit_set, val_set, test_set = fit_val_test(split.manifest, seed=config.seed,
                                                  permutation_seed=run.experiment.permutation_seed)
        checkpoint_dir = run_checkpoint_dir(run)
        crops_of, normalisation = _crops(split.manifest, split.manifest_hash, size=config.input_size,
                                         download_dir=checkpoint_dir / "frames",
                                         site_normalisation=config.site_normalisation, fit_set=fit_set)
        train_crops, val_crops = crops_of(fit_set), crops_of(val_set)

        def on_epoch(record: dict) -> bool:
            lease.check()
            row = TrainingRun.objects.get(pk=run_id)
            history = [h for h in row.history if h["epoch"] < record["epoch"]] + [record]
            TrainingRun.objects.filter(pk=run_id).update(history=json_safe(history), epochs_done=record["epoch"],
                                                         heartbeat_at=timezone.now(), progress=latest[0])
            return not row.cancel_requested

        checked = [time.monotonic()]
        latest: list[dict | None] = [None]

        def on_progress(progress: dict) -> None:
            latest[0] = progress  # written by should_stop's throttled update, not per batch

        def should_stop() -> bool:
            # Asked before every batch: touch the row at most every CANCEL_POLL_S, not on every step.
            if time.monotonic() - checked[0] < CANCEL_POLL_S:
                return False
            checked[0] = time.monotonic()
            lease.check()
            TrainingRun.objects.filter(pk=run_id).update(heartbeat_at=timezone.now(), progress=latest[0])
            return TrainingRun.objects.filter(pk=run_id, cancel_requested=True).exists()

        result = fit(config, train_crops, val_crops, checkpoint_dir=checkpoint_dir, on_epoch=on_epoch,
                     should_stop=should_stop, on_progress=on_progress)
        # The threads this worker process set (mlworker.threads), beside the ones torch ran with.
        runtime = {**result.runtime, **({"threads": threads.applied()} if threads.applied() else {})}
        TrainingRun.objects.filter(pk=run_id).update(history=json_safe(result.history),
                                                     resumed_from_epoch=result.resumed_from_epoch,
                                                     device=result.device, best_epoch=result.best_epoch,
                                                     images_per_s=result.images_per_s, runtime=runtime)
        if result.cancelled:
            _finish(lease, TrainingRun.Status.CANCELLED)
            return "cancelled"
        if result.best_checkpoint is None:  # every epoch's validation loss was undefined
            _finish(lease, TrainingRun.Status.FAILED, error=(
                f"Training diverged: no epoch had a finite validation loss (learning rate {config.lr:g}); the "
                "history shows where the losses became undefined. Launch again with a lower learning rate."))
            return "failed"
        model, _ = load_trained(result.best_checkpoint, device=select_device(config.device))
        test_crops = crops_of(test_set)
        probabilities = predict_proba(model, test_crops, device=select_device(config.device))
        labels = [e["label"] for e in test_set]
        hand_ids = [e["hand"] for e in test_set]
        evaluation = evaluate_predictions(labels, probabilities, hand_ids, seed=config.seed)
        evaluation["dashboard"] = evaluation_summary(labels, probabilities, hand_ids, stages=hand_stages(hand_ids),
                                                     threshold=evaluation["threshold"])
        external_set = [e for e in split.manifest if e["subset"] == "external"]
        if external_set:
            evaluation["external"] = _external_evaluation(model, crops_of(external_set), external_set, evaluation,
                                                          config, domain=split.domain)
        if config.site_normalisation != "none":
            evaluation["normalisation"] = normalisation
        digest, stored = _register_weights(run, result.best_checkpoint)
        _finish(lease, TrainingRun.Status.DONE, weights=stored, weights_sha256=digest, code_version=code_version(),
                library_versions=library_versions(), evaluation=json_safe(evaluation),
                predictions=json_safe({"frame_ids": [e["frame"] for e in test_set], "hand_ids": hand_ids,
                                       "labels": labels, "probabilities": [float(p) for p in probabilities]}))
        from studyapp.explanations.services import jobs_queue_after_training

        jobs_queue_after_training(run_id=run_id)
    except LeaseLost:
        raise
    except WeightsUnavailable as error:
        _finish(lease, TrainingRun.Status.FAILED, error=weights_unavailable_message(run.model_name, error))
        return "failed"
    except (ImageChanged, NoValidationSplit) as error:  # the frozen data changed or is too small: retrying is vain
        _finish(lease, TrainingRun.Status.FAILED, error=str(error))
        return "failed"
    except Exception as error:
        _finish(lease, TrainingRun.Status.FAILED, error=f"{type(error).__name__}: {error}")
        raise
    return "done"


def _external_evaluation(model, crops: CropTensors, entries: list[dict], internal: dict, config: TrainConfig, *,
                         domain: str) -> dict:
    """The external test hands scored by the selected model and evaluated beside the internal ones."""
    probabilities = predict_proba(model, crops, device=select_device(config.device))
    hand_ids = [e["hand"] for e in entries]
    return external_evaluation([e["label"] for e in entries], probabilities, hand_ids, internal=internal,
                               entries=entries, stages=hand_stages(hand_ids), seed=config.seed, domain=domain)


def weights_unavailable_message(model_name: str, error: WeightsUnavailable) -> str:
    """What the PI reads first: the installation's remedy (CTS_WEIGHTS_DIR), then the library's details."""
    folder = settings.CTS_WEIGHTS_DIR or "unset"
    return (f"No ImageNet weights for {model_name} on the training worker. Put them at "
            f"{expected_weights_file(model_name)} (CTS_WEIGHTS_DIR is {folder}), or launch again with random "
            f"initialisation. Details: {error}")


def _register_weights(run: TrainingRun, checkpoint: Path) -> tuple[str, str]:
    digest = hashlib.sha256(checkpoint.read_bytes()).hexdigest()
    name = f"models/run_{run.pk}_{run.model_name}_{digest[:12]}.pt"
    if not default_storage.exists(name):
        with checkpoint.open("rb") as handle:
            name = default_storage.save(name, File(handle))
    return digest, name
