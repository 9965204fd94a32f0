"""Reads for the PI's pages: splits with their counts and blocking problems, launch estimates, kept weights,
and the permuted-label (null) controls beside the real results."""

from __future__ import annotations

import math

from django.db.models import Q

from mlworker.ml.constants import MODEL_LABELS

from . import datasets, services
from .estimates import Measured, duration, training_estimate
from .models import Experiment, Split, TrainingRun
from .weights import imagenet_weights_status


def split_rows(*, limit: int = 50) -> list[dict]:
    """The latest splits with train/test counts and, for locked ones, what blocks training (if anything)."""
    splits = list(Split.objects.defer("manifest")[:limit])  # checked by its hash; the JSON is read only on a change
    counts = services.splits_counts(splits)
    # Every locked split is checked in a fixed number of queries, whatever its number of hands.
    problems = services.splits_verify([split for split in splits if split.is_locked])
    return [{"split": split, "counts": counts[split.pk], "problems": problems.get(split.pk, [])} for split in splits]


def manifest_summary(split: Split) -> dict:
    """{entries, hands: [{hand, participant, label, subset, entries}]} of a split's locked manifest.

    Read from the split's recorded fingerprint (written at the lock and by checks) when there is one; a split
    locked before fingerprints existed has its manifest decoded instead, until its first check records one.
    """
    recorded = services.split_fingerprint(split)
    if recorded is not None:
        return {"entries": recorded.entries, "hands": recorded.hands}
    entries = split.manifest or []
    return {"entries": len(entries), "hands": datasets.manifest_hands(entries)}


def run_predictions(run: TrainingRun) -> list[dict]:
    """The run's per-frame test predictions in stored order (empty before evaluation)."""
    stored = TrainingRun.objects.filter(pk=run.pk).values_list("predictions", flat=True).first() or {}
    return [{"frame": f, "hand": h, "label": y, "probability": p} for f, h, y, p in zip(
        stored.get("frame_ids", []), stored.get("hand_ids", []), stored.get("labels", []),
        stored.get("probabilities", []))]


def _measured(model_name: str, input_size: int) -> Measured | None:
    """The latest throughput of this model at this size, on the device the latest finished run used if any."""
    done = TrainingRun.objects.filter(status=TrainingRun.Status.DONE, images_per_s__isnull=False).order_by(
        "-finished_at")
    # The web process can't see the workers' hardware; the last run tells where training runs now.
    device = done.values_list("device", flat=True).first()
    same = done.filter(model_name=model_name, config__input_size=input_size)
    run = same.filter(device=device).first() or same.first()
    if run is None:
        return None
    return Measured(images_per_s=run.images_per_s, input_size=input_size, device=run.device or "an unknown device",
                    run_id=run.pk)


def launch_estimates(split: Split, *, models: list[str], epochs: int, input_size: int, seed: int,
                     null_controls: int = 0) -> dict:
    """Per chosen model, how long training takes on this split's training crops, and where the figure is from.

    Each permuted-label control trains every chosen model once more, as long as the real run.
    """
    fit_crops, val_crops, _ = services.fit_val_test_sizes(manifest_summary(split)["hands"], seed=seed)
    rows = []
    for model_name in models:
        estimate = training_estimate(model_name=model_name, crops=fit_crops, epochs=epochs,
                                     input_size=input_size, measured=_measured(model_name, input_size))
        rows.append({"model": model_name, "label": MODEL_LABELS[model_name], "duration": duration(estimate.seconds),
                     "seconds": estimate.seconds, "images_per_s": estimate.images_per_s, "source": estimate.source})
    total = sum(row["seconds"] for row in rows) * (1 + null_controls)
    return {"rows": rows, "crops": fit_crops, "val_crops": val_crops, "epochs": epochs,
            "null_controls": null_controls, "total": duration(total) if rows else None}


def weights_availability() -> dict[str, dict]:
    """Per model, whether ImageNet weights are on this machine (as the web server sees it)."""
    return {name: imagenet_weights_status(name).__dict__ for name in MODEL_LABELS}


def kept_weights_note(run: TrainingRun) -> str:
    """Which epoch's weights the run kept and why, by fit's rule: lowest finite validation loss."""
    history = run.history or []
    if not history or run.best_epoch is None:
        return ""
    planned = run.config.get("epochs", len(history))
    best = next((h for h in history if h["epoch"] == run.best_epoch), None)
    if best is None:
        return ""
    auc = best.get("val_auc")
    auc_text = (f", validation AUC {auc:.3f}" if auc is not None and math.isfinite(auc) else
                f", validation AUC undefined: {best['val_auc_undefined']}" if best.get("val_auc_undefined") else "")
    note = (f"Weights of epoch {run.best_epoch} of {history[-1]['epoch']} kept: lowest validation loss "
            f"({best['val_loss']:.3f}{auc_text}).")
    patience = run.config.get("early_stopping_patience")
    since_best = history[-1]["epoch"] - run.best_epoch
    if history[-1].get("train_loss_undefined"):
        note += (f" Stopped at epoch {history[-1]['epoch']}: the training loss was "
                 f"{history[-1]['train_loss_undefined']}.")
    elif patience and len(history) < planned and since_best >= patience:
        note += (f" Stopped early after {since_best} epochs without a lower validation loss "
                 f"(patience {patience}; {planned} planned).")
    elif len(history) >= planned:
        note += f" All {planned} planned epochs ran."
    return note + reproduction_note(run)


def reproduction_note(run: TrainingRun) -> str:
    """The settings a rerun must match to give the same numbers (and the same weights SHA-256)."""
    rt = run.runtime or {}
    if not rt:
        return ""
    determinism = "deterministic algorithms on" if rt.get("deterministic_algorithms") else "non-deterministic kernels"
    exact = "" if rt.get("device", "").startswith("cpu") else " (GPU runs are not bitwise reproducible)"
    return (f" A reproduction must use the same split manifest, seed and code on {rt.get('device')} with "
            f"{rt.get('torch_threads')} CPU thread(s) and {determinism}{exact}.")


def null_distribution(experiment: Experiment) -> dict | None:
    """Each model's hand-level test AUC beside the same model's in the permuted-label controls of the experiment.

    The empirical p-value is (1 + controls scoring at least the real AUC) / (1 + controls): how often chance
    alone did as well on this split. Reads the AUCs only, not the stored curves.
    """
    rows = list(TrainingRun.objects.filter(Q(experiment=experiment) | Q(experiment__null_of=experiment),
                                           status=TrainingRun.Status.DONE)
                .values_list("experiment_id", "model_name", "evaluation__hand__metrics__auc"))
    n_controls = experiment.null_controls.count()
    if not n_controls:
        return None
    real = {model: auc for exp, model, auc in rows if exp == experiment.pk}
    nulls: dict[str, list[float]] = {}
    for exp, model, auc in rows:
        if exp != experiment.pk and auc is not None:
            nulls.setdefault(model, []).append(float(auc))
    models = []
    for model in sorted(set(real) | set(nulls)):
        values = sorted(nulls.get(model, []))
        observed = real.get(model)
        p_value = ((1 + sum(v >= observed for v in values)) / (1 + len(values))
                   if observed is not None and values else None)
        models.append({"model": model, "real_auc": observed, "null_aucs": values, "n": len(values),
                       "null_mean": sum(values) / len(values) if values else None,
                       "null_min": values[0] if values else None, "null_max": values[-1] if values else None,
                       "p_value": p_value})
    return {"controls": n_controls, "models": models}
