"""Splits (create, lock, verify), experiment launch and cancel, and the training run the worker executes."""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import numpy as np
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from mlworker.ml import MODEL_NAMES, CropSample, ImageChanged, TrainConfig, WeightsUnavailable, fit, load_crops
from mlworker.ml import load_trained
from mlworker.ml import library_versions, predict_proba, select_device
from mlworker.stats import compare_models, csa_baseline, csa_between_groups, evaluate_predictions
from studyapp.cohort.models import CsaMeasurement, Hand
from studyapp.cohort.selectors import latest_inlet_csa
from studyapp.common.jobs import cancel_requested, requeue_running
from studyapp.common.storage import local_path
from studyapp.dashboards.experiment_selectors import hand_stages
from studyapp.dashboards.experiment_summary import evaluation_summary
from studyapp.protocol.models import StudySettings

from . import datasets
from .models import Experiment, Split, SplitLocked, SplitMember, TrainingRun
from .splitting import Candidate, permuted_labels, plan_split, validation_hands
from .weights import expected_weights_file, weights_file

DEFAULT_TRAIN = {"epochs": 30, "batch_size": 32, "lr": 1e-4, "optimizer": "adam", "early_stopping_patience": 5,
                 "seed": 0, "input_size": 224, "augment": True}
VALIDATION_FRACTION = 0.2
MAX_NULL_CONTROLS = 20
logger = logging.getLogger(__name__)
# How often a running run touches its row (heartbeat, cancel check, progress): rarely enough to cost nothing.
CANCEL_POLL_S = 2.0


def _invalid(field: str, message: str, code: str) -> ValidationError:
    return ValidationError({field: ValidationError(message, code=code)})


# --- splits -------------------------------------------------------------------------------------------

def split_candidates() -> tuple[list[Candidate], list[dict]]:
    """Eligible hands (included control/CTS, fully annotated) and the others with the reason."""
    eligible, left_out = [], []
    for hand in Hand.objects.select_related("participant").order_by("pk"):
        try:
            datasets.hand_label(hand)
            datasets.hand_entries(hand)
        except datasets.NotReady as reason:
            left_out.append({"hand": hand.pk, "study_code": hand.participant.study_code, "side": hand.side,
                             "reason": str(reason)})
            continue
        eligible.append(Candidate(hand.pk, hand.participant_id, hand.group))
    return eligible, left_out


@transaction.atomic
def split_create(*, name: str, seed: int = 0, test_per_group: int | None = 10, test_fraction: float | None = None,
                 train_per_group: int | None = 40, created_by=None, supersedes: Split | None = None) -> Split:
    if test_fraction is not None:
        test_per_group = None
    candidates, left_out = split_candidates()
    if not candidates:
        raise _invalid("name", "No hand is eligible yet: a split needs included control and CTS hands whose clip "
                               "frames all have a confirmed ROI.", "no_eligible_hands")
    try:
        plan = plan_split(candidates, seed=seed, test_per_group=test_per_group, test_fraction=test_fraction,
                          train_per_group=train_per_group)
    except ValueError as error:
        raise _invalid("test_per_group", str(error), "bad_split") from None
    groups = {c.hand_id: c.group for c in candidates}
    counts = plan.counts(groups)
    if not all(counts[s][g] for s in ("train", "test") for g in ("control", "cts")):
        eligible = {g: sum(c.group == g for c in candidates) for g in ("control", "cts")}
        raise _invalid("test_per_group", (
            f"Training and testing each need hands of both groups, but these settings give training "
            f"{counts['train']['control']} control and {counts['train']['cts']} CTS hands and testing "
            f"{counts['test']['control']} control and {counts['test']['cts']} CTS hands, from "
            f"{eligible['control']} control and {eligible['cts']} CTS hands eligible now. "
            f"Ask for fewer test hands per group, or annotate more hands."), "empty_side")
    version = (Split.objects.filter(name=name).order_by("-version").values_list("version", flat=True).first() or 0) + 1
    split = Split.objects.create(name=name, version=version, seed=seed, test_per_group=test_per_group,
                                 test_fraction=test_fraction, train_per_group=train_per_group, created_by=created_by,
                                 supersedes=supersedes, left_out=left_out + [
                                     {"hand": h, "reason": "beyond the requested train/test counts"}
                                     for h in plan.unused])
    hands = Hand.objects.in_bulk(plan.train + plan.test)
    SplitMember.objects.bulk_create(
        [SplitMember(split=split, hand=hands[h], subset="train", label=datasets.LABELS[groups[h]]) for h in plan.train]
        + [SplitMember(split=split, hand=hands[h], subset="test", label=datasets.LABELS[groups[h]]) for h in plan.test])
    return split


def splits_counts(splits: list[Split]) -> dict[int, dict]:
    """Train/test hands per group of each split, in one query."""
    counts = {split.pk: {s: {"control": 0, "cts": 0} for s in ("train", "test")} for split in splits}
    for split_id, subset, label in SplitMember.objects.filter(split__in=splits).values_list(
            "split_id", "subset", "label"):
        counts[split_id][subset]["cts" if label else "control"] += 1
    return counts


def split_counts(split: Split) -> dict:
    return splits_counts([split])[split.pk]


def _current_manifest(split: Split) -> list[dict]:
    members = [(m.hand, m.subset) for m in split.members.select_related("hand")]
    return datasets.manifest_for(members)


@transaction.atomic
def split_lock(*, split: Split, locked_by=None) -> Split:
    """Freeze membership and the dataset: the manifest of (hand, frame, crop box, label) and its hash."""
    split = Split.objects.select_for_update().get(pk=split.pk)
    if split.is_locked:
        raise SplitLocked(split.pk)
    try:
        entries = _current_manifest(split)
    except datasets.NotReady as reason:
        raise _invalid("status", f"A member hand is no longer ready ({reason}); make a new split.", "not_ready") from None
    for member in split.members.select_related("hand"):
        if datasets.LABELS[member.hand.group] != member.label:
            raise _invalid("status", f"{member.hand}'s group changed since the split was made; make a new split.",
                           "label_changed")
    split.manifest, split.manifest_hash = entries, datasets.manifest_hash(entries)
    split.status, split.locked_by, split.locked_at = Split.Status.LOCKED, locked_by, timezone.now()
    split.save()
    return split


def split_verify(split: Split) -> list[str]:
    """Differences between the locked manifest and the data now; empty when training may use the split."""
    if not split.is_locked:
        return ["The split is not locked."]
    try:
        current = _current_manifest(split)
    except datasets.NotReady as reason:
        return [f"A member hand is no longer ready: {reason}."]
    if split.manifest and "image_sha256" not in split.manifest[0]:
        # Locked before frames were hashed: compare what that manifest recorded.
        current = [{k: v for k, v in e.items() if k != "image_sha256"} for e in current]
    if datasets.manifest_hash(current) == split.manifest_hash:
        return []
    before = {(e["hand"], e["frame"]): e for e in split.manifest}
    after = {(e["hand"], e["frame"]): e for e in current}
    changed_hands = sorted({key[0] for key in set(before) ^ set(after)}
                           | {key[0] for key in set(before) & set(after) if before[key] != after[key]})
    names = {h.pk: str(h) for h in Hand.objects.filter(pk__in=changed_hands).select_related("participant")}
    return [f"{names.get(h, h)}: label, frames or ROIs changed since the split was locked." for h in changed_hands]


def split_verify_files(split: Split) -> list[str]:
    """Member frames whose stored image no longer has the SHA-256 the locked manifest recorded.

    Reads every image, so it is asked for explicitly (`check/?files=1`); training checks each crop it loads.
    """
    changed: dict[int, list[int]] = {}
    for entry in split.manifest or []:
        expected = entry.get("image_sha256")
        if not expected:
            continue
        try:
            with default_storage.open(entry["image"], "rb") as handle:
                digest = hashlib.sha256(handle.read()).hexdigest()
        except OSError:
            digest = ""
        if digest != expected:
            changed.setdefault(entry["hand"], []).append(entry["index"])
    names = {h.pk: str(h) for h in Hand.objects.filter(pk__in=changed).select_related("participant")}
    return [f"{names.get(h, h)}: the image of frame(s) {', '.join(map(str, sorted(idx)))} changed on storage since "
            "the split was locked." for h, idx in sorted(changed.items())]


# --- experiments ----------------------------------------------------------------------------------------

@transaction.atomic
def experiment_launch(*, split: Split, name: str = "", models: list[str] | None = None, random_init: bool = False,
                      hyperparameters: dict | None = None, created_by=None, null_controls: int = 0) -> Experiment:
    """Create one training run per model on a locked, unchanged split and queue them for the workers.

    `null_controls` more experiments run the same models with the training labels permuted (seeds 1..n):
    their test AUCs show what chance looks like on this split, beside the real one.
    """
    problems = split_verify(split)
    if problems:
        raise _invalid("split", "Training is blocked on this split: " + " ".join(problems[:5])
                       + " Make a new split version.", "manifest_mismatch")
    models = models or list(MODEL_NAMES)
    unknown = sorted(set(models) - set(MODEL_NAMES))
    if unknown:
        raise _invalid("models", f"Unknown model(s) {unknown}; choose from {list(MODEL_NAMES)}.", "unknown_model")
    if not 0 <= null_controls <= MAX_NULL_CONTROLS:
        raise _invalid("null_controls", f"Ask for 0 to {MAX_NULL_CONTROLS} permuted-label controls.",
                       "bad_null_controls")
    shared = {**DEFAULT_TRAIN, **(hyperparameters or {})}
    configs = {}
    for model_name in models:
        try:
            configs[model_name] = TrainConfig(model_name=model_name, pretrained=not random_init,
                                              weights_file=None if random_init else weights_file(model_name), **shared)
        except (TypeError, ValueError) as error:
            raise _invalid("hyperparameters", str(error), "bad_hyperparameters") from None
    name = name or f"{split} {timezone.localdate()}"
    experiment = _experiment_with_runs(split, name, shared, configs, random_init, created_by)
    for seed in range(1, null_controls + 1):
        _experiment_with_runs(split, f"{name} · null control {seed}", shared, configs, random_init, created_by,
                              null_of=experiment, permutation_seed=seed)
    return experiment


def _experiment_with_runs(split, name, shared, configs, random_init, created_by, **null) -> Experiment:
    experiment = Experiment.objects.create(name=name, split=split, manifest_hash=split.manifest_hash, config=shared,
                                           created_by=created_by, **null)
    for model_name, config in configs.items():
        run = TrainingRun.objects.create(experiment=experiment, model_name=model_name, config=config.to_dict(),
                                         random_init=random_init, manifest_hash=split.manifest_hash)
        transaction.on_commit(lambda run_id=run.pk: queue_run(run_id))
    return experiment


def queue_run(run_id: int) -> None:
    from .tasks import train_model

    train_model.apply_async((run_id,), queue=settings.CTS_TRAINING_QUEUE)


@transaction.atomic
def run_cancel(*, run: TrainingRun) -> TrainingRun:
    """Cancel a queued run now; a running one stops after its current epoch."""
    run = cancel_requested(TrainingRun, run.pk, stops="within a few seconds")
    if run.is_finished:
        experiment_compare_if_complete(experiment_id=run.experiment_id)
    return run


def runs_requeue_stale(*, older_than: timedelta) -> list[int]:
    """Running runs with no sign of life for `older_than` (their worker is gone): queue them again.

    They resume from their checkpoint, which is why CTS_CHECKPOINT_DIR must be shared by training workers.
    """
    return requeue_running(TrainingRun, queue_run, heartbeat_at__lt=timezone.now() - older_than)


def runs_requeue_orphans(*, worker: str) -> list[int]:
    """Runs a worker of this name held when it died: queue them again; they resume from their checkpoint."""
    return requeue_running(TrainingRun, queue_run, worker=worker)


# --- the training run (executed by the worker) --------------------------------------------------------

def fit_val_test(entries: list[dict], *, seed: int,
                 permutation_seed: int | None = None) -> tuple[list[dict], list[dict], list[dict]]:
    """A locked manifest's entries to fit on, to select on (held-out training hands) and to test on.

    With `permutation_seed` (a null control) the training hands' labels are shuffled across hands first;
    the test hands keep their true labels, so the test AUC shows what chance looks like.
    """
    train_entries = [e for e in entries if e["subset"] == "train"]
    if permutation_seed is not None:
        permuted = permuted_labels({e["hand"]: e["label"] for e in train_entries}, seed=permutation_seed)
        train_entries = [{**e, "label": permuted[e["hand"]]} for e in train_entries]
    train_hands = {e["hand"]: Candidate(e["hand"], e["participant"], "cts" if e["label"] else "control")
                   for e in train_entries}
    val_hands = set(validation_hands(list(train_hands.values()), fraction=VALIDATION_FRACTION, seed=seed))
    return ([e for e in train_entries if e["hand"] not in val_hands],
            [e for e in train_entries if e["hand"] in val_hands],
            [e for e in entries if e["subset"] == "test"])


def _samples(entries: list[dict], cache: Path) -> list[CropSample]:
    return [CropSample(image_path=str(local_path(e["image"], cache)), box=tuple(e["box"]), label=e["label"],
                       hand_id=e["hand"], frame_id=e["frame"], sha256=e.get("image_sha256", "")) for e in entries]


def code_version() -> str:
    if os.environ.get("CTS_CODE_VERSION"):
        return os.environ["CTS_CODE_VERSION"]
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=settings.BASE_DIR, capture_output=True, text=True,
                              timeout=5, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def run_checkpoint_dir(run: TrainingRun) -> Path:
    # The queue time makes the folder unique even when a database is reset and ids start again.
    return Path(settings.CTS_CHECKPOINT_DIR) / f"run_{run.pk}_{run.model_name}_{run.queued_at:%Y%m%dT%H%M%S%f}"


def run_claim(*, run_id: int, task_id: str, worker: str) -> TrainingRun | None:
    """Take a queued run, or the same task redelivered after its worker died; None if someone else has it."""
    from django.db.models import Q

    claimed = TrainingRun.objects.filter(
        Q(status=TrainingRun.Status.QUEUED) | Q(status=TrainingRun.Status.RUNNING, task_id=task_id),
        pk=run_id, cancel_requested=False,
    ).update(status=TrainingRun.Status.RUNNING, task_id=task_id, worker=worker, error="",
             started_at=timezone.now(), heartbeat_at=timezone.now())
    return TrainingRun.objects.select_related("experiment__split").get(pk=run_id) if claimed else None


def _finish(run_id: int, status: str, **fields) -> None:
    """End a run; the last run of its experiment to end also writes the comparison, in the same commit."""
    with transaction.atomic():
        TrainingRun.objects.filter(pk=run_id).update(status=status, finished_at=timezone.now(), **fields)
        experiment_compare_if_complete(experiment_id=TrainingRun.objects.values_list(
            "experiment_id", flat=True).get(pk=run_id))


def run_train(*, run_id: int, task_id: str, worker: str) -> str:
    """Train, evaluate on the test hands and register one model; progress and errors go on the run row."""
    run = run_claim(run_id=run_id, task_id=task_id, worker=worker)
    if run is None:
        return "not claimed"
    run_id = run.pk
    split = run.experiment.split
    try:
        config = TrainConfig.from_dict(run.config)
        # The frozen manifest holds every frame, box and label: a run trains on it, whatever was edited since
        # the lock (launch refuses a split whose data changed; a run already going finishes as it began).
        fit_set, val_set, test_set = fit_val_test(split.manifest, seed=config.seed,
                                                  permutation_seed=run.experiment.permutation_seed)
        checkpoint_dir = run_checkpoint_dir(run)
        cache = checkpoint_dir / "frames"
        size = config.input_size
        train_crops = load_crops(_samples(fit_set, cache), size=size)
        val_crops = load_crops(_samples(val_set, cache), size=size)

        def on_epoch(record: dict) -> bool:
            row = TrainingRun.objects.get(pk=run_id)
            history = [h for h in row.history if h["epoch"] < record["epoch"]] + [record]
            TrainingRun.objects.filter(pk=run_id).update(history=history, epochs_done=record["epoch"],
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
            TrainingRun.objects.filter(pk=run_id).update(heartbeat_at=timezone.now(), progress=latest[0])
            return TrainingRun.objects.filter(pk=run_id, cancel_requested=True).exists()

        result = fit(config, train_crops, val_crops, checkpoint_dir=checkpoint_dir, on_epoch=on_epoch,
                     should_stop=should_stop, on_progress=on_progress)
        TrainingRun.objects.filter(pk=run_id).update(history=result.history, resumed_from_epoch=result.resumed_from_epoch,
                                                     device=result.device, best_epoch=result.best_epoch,
                                                     images_per_s=result.images_per_s, runtime=result.runtime)
        if result.cancelled:
            _finish(run_id, TrainingRun.Status.CANCELLED)
            return "cancelled"
        model, _ = load_trained(result.best_checkpoint, device=select_device(config.device))
        test_crops = load_crops(_samples(test_set, cache), size=size)
        probabilities = predict_proba(model, test_crops, device=select_device(config.device))
        labels = [e["label"] for e in test_set]
        hand_ids = [e["hand"] for e in test_set]
        evaluation = evaluate_predictions(labels, probabilities, hand_ids, seed=config.seed)
        evaluation["dashboard"] = evaluation_summary(labels, probabilities, hand_ids, stages=hand_stages(hand_ids),
                                                     threshold=evaluation["threshold"])
        digest, stored = _register_weights(run, result.best_checkpoint)
        _finish(run_id, TrainingRun.Status.DONE, weights=stored, weights_sha256=digest, code_version=code_version(),
                library_versions=library_versions(), evaluation=evaluation,
                predictions={"frame_ids": [e["frame"] for e in test_set], "hand_ids": hand_ids, "labels": labels,
                             "probabilities": [float(p) for p in probabilities]})
        from studyapp.explanations.services import jobs_queue_after_training

        jobs_queue_after_training(run_id=run_id)
    except WeightsUnavailable as error:
        _finish(run_id, TrainingRun.Status.FAILED, error=weights_unavailable_message(run.model_name, error))
        return "failed"
    except ImageChanged as error:  # the frozen dataset's pixels changed: retrying can't help
        _finish(run_id, TrainingRun.Status.FAILED, error=str(error))
        return "failed"
    except Exception as error:
        _finish(run_id, TrainingRun.Status.FAILED, error=f"{type(error).__name__}: {error}")
        raise
    return "done"


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


def _latest_manual_csa(hand_ids) -> dict[int, float]:
    method = StudySettings.current().csa_baseline_method
    values = latest_inlet_csa(hand_ids=hand_ids, method=method)
    if method == CsaMeasurement.Method.OUTLINE:  # where raters disagreed, the value the PI kept
        from studyapp.annotations.selectors import adjudicated_outline_csa

        values.update(adjudicated_outline_csa(hand_ids=hand_ids))
    return values


@transaction.atomic
def experiment_compare_if_complete(*, experiment_id: int) -> dict | None:
    """Once every run is finished: DeLong between models, the manual-CSA baseline, Mann–Whitney for CSA."""
    # The row lock serialises runs ending at once on two workers, so the later one sees both finished.
    experiment = Experiment.objects.select_for_update().select_related("split").get(pk=experiment_id)
    runs = list(experiment.runs.all())
    if not all(run.is_finished for run in runs):
        return None
    try:
        comparison = _comparison(experiment, runs)
    except Exception as error:  # recorded where the PI reads results; the runs themselves still end
        logger.exception("Comparison of experiment %s failed", experiment_id)
        comparison = {"error": f"{type(error).__name__}: {error}"}
    Experiment.objects.filter(pk=experiment_id).update(comparison=comparison)
    return comparison


def _comparison(experiment: Experiment, runs: list[TrainingRun]) -> dict:
    done = [run for run in runs if run.status == TrainingRun.Status.DONE]
    comparison: dict = {"models": [run.model_name for run in done]}
    if done:
        reference = done[0].predictions
        scores = {}
        for run in done:
            order = {frame: i for i, frame in enumerate(run.predictions["frame_ids"])}
            scores[run.model_name] = [run.predictions["probabilities"][order[f]] for f in reference["frame_ids"]]
        if len(done) > 1:
            comparison["delong"] = compare_models(reference["labels"], scores, reference["hand_ids"])
        comparison["csa_baseline"] = _csa_baseline(experiment.split, done)
    comparison["csa_between_groups"] = _csa_groups()
    return comparison


def _csa_baseline(split: Split, done: list[TrainingRun]) -> dict:
    members = list(split.members.values_list("hand_id", "subset", "label"))
    csa = _latest_manual_csa([m[0] for m in members])
    train = [(csa[h], label) for h, subset, label in members if subset == "train" and h in csa]
    test = [(h, csa[h], label) for h, subset, label in members if subset == "test" and h in csa]
    if len({label for _, label in train}) < 2 or len({label for _, _, label in test}) < 2:
        return {"note": "Needs manual CSA of both groups in training and in testing."}
    hand_scores = {}
    for run in done:
        hands = run.evaluation["hand"]
        lookup = dict(zip(hands["hand_ids"], hands["probabilities"]))
        hand_scores[run.model_name] = [lookup[h] for h, _, _ in test]
    return csa_baseline([c for c, _ in train], [l for _, l in train], [c for _, c, _ in test],
                        [l for _, _, l in test], test_hand_ids=[h for h, _, _ in test], model_hand_scores=hand_scores)


def _csa_groups() -> dict:
    hands = Hand.objects.filter(exclusion_reason="", group__in=["control", "cts"]).values_list("pk", "group")
    csa = _latest_manual_csa([h for h, _ in hands])
    control = [csa[h] for h, g in hands if g == "control" and h in csa]
    cts = [csa[h] for h, g in hands if g == "cts" and h in csa]
    if not control or not cts:
        return {"note": "Needs manual CSA in both groups."}
    return {"groups": ["control", "cts"], **csa_between_groups(control, cts)}


# --- prediction with a registered model -----------------------------------------------------------------

_MODEL_CACHE: dict[str, object] = {}


def predict_clip(*, run: TrainingRun, clip, heatmaps: list[str] | tuple = ()) -> dict:
    """Per-frame and per-hand CTS probability of a clip with confirmed ROIs, from a registered model.

    `heatmaps` names explanation methods whose per-frame heatmap PNGs (base64) come with each frame.
    """
    if run.status != TrainingRun.Status.DONE or not run.weights:
        raise _invalid("model", "This run has no registered model (it is not done).", "not_registered")
    rois = list(datasets.primary_rois(clip).values())
    if not rois:
        raise _invalid("clip", "The clip has no confirmed ROI to crop; annotate it first.", "no_roi")
    device = select_device("auto")
    key = f"{run.weights_sha256}:{device}"
    with tempfile.TemporaryDirectory() as tmp:
        if key not in _MODEL_CACHE:
            weights = local_path(run.weights.name, Path(tmp))
            _MODEL_CACHE.clear()  # one model at a time in a web process
            _MODEL_CACHE[key] = load_trained(weights, device=device)
        model, config = _MODEL_CACHE[key]
        samples = [CropSample(image_path=str(local_path(r.frame.image.name, Path(tmp))), box=r.box, label=0,
                              hand_id=clip.hand_id, frame_id=r.frame_id) for r in rois]
        crops = load_crops(samples, size=config.input_size)
        probabilities = predict_proba(model, crops, device=device)
        maps = [{} for _ in rois]
        if heatmaps:
            from studyapp.explanations.explaining import crop_heatmaps

            try:
                maps = crop_heatmaps(run=run, model=model, images=crops.images, boxes=[r.box for r in rois],
                                     spacing_col_mm=clip.pixel_spacing_col_mm, methods=list(heatmaps), device=device)
            except ValueError as error:
                raise _invalid("heatmaps", str(error), "no_spacing") from None
    return {"model": run.model_name, "run": run.pk, "weights_sha256": run.weights_sha256, "clip": clip.pk,
            "hand": clip.hand_id,
            "frames": [{"frame": r.frame_id, "index": r.frame.index, "probability": float(p),
                        **({"heatmaps": m} if heatmaps else {})} for r, p, m in zip(rois, probabilities, maps)],
            "hand_probability": float(np.mean(probabilities))}
