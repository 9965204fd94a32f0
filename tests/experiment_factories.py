"""A finished experiment stored as training leaves one, without training: the test frames' probabilities are
drawn (a hand effect plus frame noise, so models differ and err on some hands), then evaluated, summarised
and compared by the platform's own code (evaluate_predictions, the dashboard summary, the comparison)."""

from __future__ import annotations

import numpy as np

MODELS = ("squeezenet1_1", "mobilenetv2_100", "efficientnet_b0")


def evaluated_experiment(*, n_hands: int = 24, frames_per_clip: int = 4, models=MODELS, test_per_group: int | None = 3,
                         test_fraction: float | None = None, seed: int = 0, n_boot: int = 200, name: str = "study",
                         cohort: bool = True, split=None, n_annotators: int = 1):
    """(experiment, runs): a locked split of a bulk cohort and one done run per model with its evaluation."""
    from django.utils import timezone

    from mlworker.stats import evaluate_predictions
    from studyapp.dashboards.experiment_selectors import hand_stages
    from studyapp.dashboards.experiment_summary import evaluation_summary
    from studyapp.experiments import services
    from studyapp.experiments.models import Experiment, TrainingRun
    from tests.factories import UserFactory, bulk_cohort

    if split is None:
        if cohort:
            annotators = [UserFactory(username=f"{name}-annotator{i}", role="annotator") for i in range(n_annotators)]
            bulk_cohort(n_hands, annotators=annotators, frames_per_clip=frames_per_clip, seed=seed,
                        prefix=name.upper())
        split = services.split_lock(split=services.split_create(
            name=name, seed=seed, test_per_group=None if test_fraction else test_per_group,
            test_fraction=test_fraction, train_per_group=None))
    config = {**services.DEFAULT_TRAIN, "epochs": 6}
    experiment = Experiment.objects.create(name=f"{name} models", split=split, manifest_hash=split.manifest_hash,
                                           config=config)
    test = [e for e in split.manifest if e["subset"] == "test"]
    labels = [e["label"] for e in test]
    hand_ids = [e["hand"] for e in test]
    stages = hand_stages(hand_ids)
    rng = np.random.default_rng(seed)
    runs = []
    for i, model in enumerate(models):
        effect = {h: rng.normal(1.4 if label else -1.4, 1.2) for h, label in zip(hand_ids, labels)}
        probabilities = 1 / (1 + np.exp(-(np.array([effect[h] for h in hand_ids]) + rng.normal(0, 0.9, len(test)))))
        evaluation = evaluate_predictions(labels, probabilities, hand_ids, n_boot=n_boot, seed=seed)
        evaluation["dashboard"] = evaluation_summary(labels, probabilities, hand_ids, stages=stages,
                                                     threshold=evaluation["threshold"])
        history = [{"epoch": e, "train_loss": 0.7 / e + 0.05 * i, "val_loss": 0.75 / e ** 0.5 + 0.04 * i,
                    "train_accuracy": min(0.99, 0.6 + 0.06 * e), "val_accuracy": min(0.95, 0.55 + 0.05 * e),
                    "val_auc": min(0.97, 0.6 + 0.06 * e - 0.02 * i), "seconds": 1.0} for e in range(1, 7)]
        runs.append(TrainingRun.objects.create(
            experiment=experiment, model_name=model, config={**config, "model_name": model, "pretrained": True},
            status=TrainingRun.Status.DONE, epochs_done=6, history=history, best_epoch=6, device="cpu",
            finished_at=timezone.now(), manifest_hash=split.manifest_hash, code_version="0" * 40,
            weights_sha256=f"{i:x}" * 64, library_versions={"torch": "2.x", "timm": "1.x"},
            evaluation=evaluation, predictions={"frame_ids": [e["frame"] for e in test], "hand_ids": hand_ids,
                                                "labels": labels, "probabilities": probabilities.tolist()}))
    services.experiment_compare_if_complete(experiment_id=experiment.pk)
    experiment.refresh_from_db()
    return experiment, runs


def explain_run(run, *, method: str = "gradcam", images: bool = True, frames_per_hand: int | None = None):
    """A finished explanation job of `run` over its test frames (the first `frames_per_hand` of each hand, or
    all), as a worker leaves one, without computing maps.

    Shares are set per label (nerve 0.5 for CTS, 0.3 for controls; nerve area 0.1); outcomes follow the run's
    stored probabilities at its threshold. With `images`, every crop/heatmap/overlay is a small real PNG in
    storage (a different grey per frame).
    """
    import io

    import numpy as np
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage
    from PIL import Image

    from studyapp.explanations.models import ExplanationJob, FrameExplanation

    job = ExplanationJob.objects.create(run=run, method=method, status="done")
    threshold = run.evaluation.get("threshold", 0.5)
    hand_means = dict(zip(run.evaluation["hand"]["hand_ids"], run.evaluation["hand"]["probabilities"]))
    p = run.predictions
    probabilities = dict(zip(p["frame_ids"], p["probabilities"]))

    def outcome(label, probability):
        return ("T" if (probability >= threshold) == bool(label) else "F") + ("P" if probability >= threshold else "N")

    rows, per_hand = [], {}
    test = [e for e in run.experiment.split.manifest if e["subset"] == "test" and e["frame"] in probabilities]
    if frames_per_hand is not None:
        test = [e for e in test if per_hand.setdefault(e["hand"], []).append(e) or len(per_hand[e["hand"]]) <= frames_per_hand]
    for i, entry in enumerate(test):
        name = f"explanations/test/{run.pk}_{method}_{i}"
        if images:
            buffer = io.BytesIO()
            Image.fromarray(np.full((32, 32, 3), (i * 37) % 256, np.uint8)).save(buffer, format="PNG")
            for suffix in ("crop", "heat", "overlay"):
                default_storage.save(f"{name}_{suffix}.png", ContentFile(buffer.getvalue()))
        nerve = 0.5 if entry["label"] else 0.3
        probability, hand_probability = probabilities[entry["frame"]], hand_means[entry["hand"]]
        rows.append(FrameExplanation(
            job=job, frame_id=entry["frame"], hand_id=entry["hand"], box=entry["box"], mm_per_px=0.1,
            attribution=f"{name}.npz", crop=f"{name}_crop.png", heatmap=f"{name}_heat.png",
            overlay=f"{name}_overlay.png", probability=probability, label=entry["label"],
            frame_outcome=outcome(entry["label"], probability), hand_probability=hand_probability,
            hand_outcome=outcome(entry["label"], hand_probability), outline_source="traced",
            shares={"nerve": nerve, "ring": 0.2, "outside": 0.8 - nerve, "nerve_area": 0.1, "ring_area": 0.15,
                    "outside_area": 0.75, "pointing": "nerve", "positive_mass": 1.0, "reason": None}))
    FrameExplanation.objects.bulk_create(rows)
    return job


def assign_sites(codes=("A", "B"), scanners=("Acme Sono 5", "Boreal UX 9", "Cirrus HD 3")):
    """Sites `codes` (and one scanner each) on the study's clips: participants of each group in turn, so
    every group is at every site and a participant's clips are all at one."""
    from studyapp.clips.models import Clip
    from studyapp.cohort.models import Hand
    from studyapp.sites.models import Site

    sites = [Site.objects.create(code=code, name=f"Hospital {code}") for code in codes]
    seen: dict[str, list[int]] = {}
    for hand in Hand.objects.order_by("participant_id", "pk"):
        participants = seen.setdefault(hand.group, [])
        if hand.participant_id not in participants:
            participants.append(hand.participant_id)
    for participants in seen.values():
        for i, participant in enumerate(participants):
            manufacturer, model = scanners[i % len(sites) % len(scanners)].rsplit(" ", 1)
            Clip.objects.filter(hand__participant_id=participant).update(
                site=sites[i % len(sites)], scanner_manufacturer=manufacturer, scanner_model=model)
    return sites


def evaluated_external_experiment(*, n_hands: int = 40, frames_per_clip: int = 3, models=MODELS[:2], seed: int = 0,
                                  n_boot: int = 200, name: str = "external", sites=("A", "B")):
    """(experiment, runs) of an external split (trained on site A, tested on the other `sites` too): each run
    evaluated as training leaves it, the external hands scored with a weaker hand effect (a model that travels
    less well)."""
    from studyapp.dashboards.experiment_external import external_evaluation
    from studyapp.dashboards.experiment_selectors import hand_stages
    from studyapp.experiments import services
    from tests.factories import UserFactory, bulk_cohort

    bulk_cohort(n_hands, annotators=[UserFactory(username=f"{name}-annotator", role="annotator")],
                frames_per_clip=frames_per_clip, seed=seed, prefix=name.upper())
    assign_sites(sites)
    split = services.split_lock(split=services.split_create(
        name=name, seed=seed, test_per_group=3, train_per_group=None, kind="external", domain="site",
        train_domains=["A"]))
    experiment, runs = evaluated_experiment(models=models, seed=seed, n_boot=n_boot, name=name, split=split)
    entries = [e for e in split.manifest if e["subset"] == "external"]
    labels, hand_ids = [e["label"] for e in entries], [e["hand"] for e in entries]
    rng = np.random.default_rng(seed + 1)
    for run in runs:
        effect = {h: rng.normal(0.5 if label else -0.5, 1.2) for h, label in zip(hand_ids, labels)}
        probabilities = 1 / (1 + np.exp(-(np.array([effect[h] for h in hand_ids]) + rng.normal(0, 0.9, len(entries)))))
        external = external_evaluation(labels, probabilities, hand_ids, internal=run.evaluation, entries=entries,
                                       stages=hand_stages(hand_ids), seed=seed, domain="site")
        run.evaluation = {**run.evaluation, "external": external}
        run.save(update_fields=["evaluation"])
    return experiment, runs
