"""Splits (create, lock, verify), experiment launch and cancel, and the comparison once runs end.

Web-safe: no torch here. What the worker executes lives in `training` (a run) and `prediction`.
"""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from mlworker.finite import json_safe
from mlworker.ml.config import TrainConfig
from mlworker.ml.constants import MODEL_NAMES
from mlworker.stats import compare_models, csa_baseline, csa_between_groups
from studyapp.clips.models import Clip
from studyapp.cohort.models import CsaMeasurement, Hand
from studyapp.cohort.selectors import latest_inlet_csa
from studyapp.common.jobs import JobKind, cancel_requested, queue_on_commit, requeue_running
from studyapp.protocol.models import StudySettings

from . import datasets
from .models import Experiment, Split, SplitFingerprint, SplitLocked, SplitMember, TrainingRun
from .splitting import Candidate, NoValidationSplit, permuted_labels, plan_external_split, plan_split, validation_hands
from .weights import weights_file

DEFAULT_TRAIN = {"epochs": 30, "batch_size": 32, "lr": 1e-4, "optimizer": "adam", "early_stopping_patience": 5,
                 "seed": 0, "input_size": 224, "augment": True, "checkpoint_every": 5}
VALIDATION_FRACTION = 0.2
MAX_NULL_CONTROLS = 20
logger = logging.getLogger(__name__)


def _invalid(field: str, message: str, code: str) -> ValidationError:
    return ValidationError({field: ValidationError(message, code=code)})


# --- splits -------------------------------------------------------------------------------------------

def split_candidates() -> tuple[list[Candidate], list[dict]]:
    """Eligible hands (included control/CTS, fully annotated) and the others with the reason.

    A fixed number of queries for any number of hands: the annotations are loaded in bulk.
    """
    hands = list(Hand.objects.select_related("participant").order_by("pk"))
    annotations = datasets.load_annotations(hand.pk for hand in hands)
    eligible, left_out = [], []
    for hand in hands:
        try:
            datasets.hand_label(hand)
            datasets.loaded_hand_entries(hand, annotations)
        except datasets.NotReady as reason:
            left_out.append({"hand": hand.pk, "study_code": hand.participant.study_code, "side": hand.side,
                             "reason": str(reason)})
            continue
        eligible.append(Candidate(hand.pk, hand.participant_id, hand.group))
    return eligible, left_out


@transaction.atomic
def split_create(*, name: str, seed: int = 0, test_per_group: int | None = 10, test_fraction: float | None = None,
                 train_per_group: int | None = 40, created_by=None, supersedes: Split | None = None,
                 kind: str = Split.Kind.INTERNAL, domain: str = "", train_domains: list[str] | None = None) -> Split:
    """Plan and save a draft split; an external one trains on `train_domains` (sites or scanners) only."""
    if test_fraction is not None:
        test_per_group = None
    if kind not in Split.Kind.values:
        raise _invalid("kind", f"A split is internal or external; {kind!r} was given.", "bad_kind")
    external = kind == Split.Kind.EXTERNAL
    train_domains = sorted(set(train_domains or []))
    if external:
        _check_domains(domain, train_domains)
    elif domain or train_domains:
        raise _invalid("kind", "Only an external split trains on chosen sites or scanners; choose kind external.",
                       "domains_need_external")
    candidates, left_out = split_candidates()
    if not candidates:
        raise _invalid("name", "No hand is eligible yet: a split needs included control and CTS hands whose clip "
                               "frames all have a confirmed ROI.", "no_eligible_hands")
    try:
        if external:
            plan = plan_external_split(candidates, hand_domains=datasets.hand_domains(
                [c.hand_id for c in candidates], domain=domain), train_domains=train_domains, domain=domain,
                seed=seed, test_per_group=test_per_group, test_fraction=test_fraction,
                train_per_group=train_per_group)
        else:
            plan = plan_split(candidates, seed=seed, test_per_group=test_per_group, test_fraction=test_fraction,
                              train_per_group=train_per_group)
    except ValueError as error:
        raise _invalid("train_domains" if external else "test_per_group", str(error), "bad_split") from None
    external_hands, planned_out = (plan.external, plan.left_out) if external else ((), ())
    groups = {c.hand_id: c.group for c in candidates}
    counts = plan.counts(groups)
    if not all(counts[s][g] for s in ("train", "test") for g in ("control", "cts")):
        internal = set(plan.train + plan.test + plan.unused)
        eligible = {g: sum(groups[h] == g for h in internal) for g in ("control", "cts")}
        where = f" of {domain}(s) {', '.join(train_domains)}" if external else ""
        raise _invalid("test_per_group", (
            f"Training and testing each need hands of both groups, but these settings give training "
            f"{counts['train']['control']} control and {counts['train']['cts']} CTS hands and testing "
            f"{counts['test']['control']} control and {counts['test']['cts']} CTS hands, from "
            f"{eligible['control']} control and {eligible['cts']} CTS hands eligible now{where}. "
            f"Ask for fewer test hands per group, or annotate more hands."), "empty_side")
    if external and not all(counts["external"][g] for g in ("control", "cts")):
        raise _invalid("train_domains", (
            f"The external test needs hands of both groups, but the other {domain}(s) give "
            f"{counts['external']['control']} control and {counts['external']['cts']} CTS hands. Choose other "
            f"training {domain}s, or annotate more hands there."), "empty_external")
    version = (Split.objects.filter(name=name).order_by("-version").values_list("version", flat=True).first() or 0) + 1
    study_codes = dict(Hand.objects.filter(pk__in=[h for h, _ in planned_out])
                       .values_list("pk", "participant__study_code"))
    split = Split.objects.create(name=name, version=version, seed=seed, test_per_group=test_per_group,
                                 test_fraction=test_fraction, train_per_group=train_per_group, created_by=created_by,
                                 supersedes=supersedes, kind=kind, domain=domain if external else "",
                                 train_domains=train_domains if external else [], left_out=left_out + [
                                     {"hand": h, "study_code": study_codes.get(h, ""), "reason": reason}
                                     for h, reason in planned_out] + [
                                     {"hand": h, "reason": "beyond the requested train/test counts"}
                                     for h in plan.unused])
    hands = Hand.objects.in_bulk(plan.train + plan.test + external_hands)
    SplitMember.objects.bulk_create(
        [SplitMember(split=split, hand=hands[h], subset=subset, label=datasets.LABELS[groups[h]])
         for subset, members in (("train", plan.train), ("test", plan.test), ("external", external_hands))
         for h in members])
    return split


def _check_domains(domain: str, train_domains: list[str]) -> None:
    """The training sites or scanners of an external split name ones the study records."""
    if domain not in (Split.Domain.SITE, Split.Domain.SCANNER):
        raise _invalid("domain", "An external split is external by site or by scanner; choose one.", "bad_domain")
    if not train_domains:
        raise _invalid("train_domains", f"Choose the {domain}(s) to train on; the others are the external test.",
                       "no_train_domains")
    known = set(domain_choices(domain))
    unknown = [d for d in train_domains if d not in known]
    if unknown:
        raise _invalid("train_domains", f"Unknown {domain}(s) {', '.join(unknown)}; the study records "
                                        f"{', '.join(sorted(known)) or 'none yet'}.", "unknown_domain")


def domain_choices(domain: str) -> list[str]:
    """The site codes, or the scanner names on the study's clips, an external split can train on."""
    from studyapp.sites.models import Site

    if domain == Split.Domain.SITE:
        return list(Site.objects.order_by("code").values_list("code", flat=True))
    names = {datasets.scanner_name(m, model) for m, model in
             Clip.objects.values_list("scanner_manufacturer", "scanner_model").distinct()}
    return sorted(n for n in names if n)


def splits_counts(splits: list[Split]) -> dict[int, dict]:
    """Train/test hands per group of each split, in one query."""
    counts = {split.pk: {s: {"control": 0, "cts": 0} for s in split_subsets(split)} for split in splits}
    for split_id, subset, label in SplitMember.objects.filter(split__in=splits).values_list(
            "split_id", "subset", "label"):
        counts[split_id][subset]["cts" if label else "control"] += 1
    return counts


def split_subsets(split: Split) -> tuple[str, ...]:
    return ("train", "test", "external") if split.is_external else ("train", "test")


def split_counts(split: Split) -> dict:
    return splits_counts([split])[split.pk]


def _current_manifest(split: Split) -> list[dict]:
    members = [(m.hand, m.subset) for m in split.members.select_related("hand")]
    return datasets.manifest_for(members, domains=split.is_external)


@transaction.atomic
def split_lock(*, split: Split, locked_by=None) -> Split:
    """Freeze membership and the dataset: the manifest of (hand, frame, crop box, label) and its hash."""
    split = Split.objects.select_for_update().get(pk=split.pk)
    if split.is_locked:
        raise SplitLocked(split.pk)
    # The inputs' fingerprint before the manifest is built: recorded only if it is the same once it is built.
    fingerprint = _inputs_fingerprints({split.pk: [(m.hand_id, m.subset) for m in split.members.all()]})
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
    _record_fingerprints([split], {split.pk: [(m.hand_id, m.subset) for m in split.members.all()]},
                         {split.pk: entries}, before=fingerprint)
    return split


def split_verify(split: Split) -> list[str]:
    """Differences between the locked manifest and the data now; empty when training may use the split."""
    return splits_verify([split])[split.pk]


def splits_verify(splits: list[Split]) -> dict[int, list[str]]:
    """split_verify of each split, in a fixed number of queries whatever the number of splits and hands.

    A locked split whose inputs have the fingerprint recorded when they last gave exactly its manifest is
    unchanged, known from one aggregate query (datasets.hand_fingerprints). Otherwise the manifest is built
    again and compared with the locked one, which names the changed hands; when that finds no change (a change
    that does not alter the manifest, such as another rater's ROI that leaves the primary rater as it was),
    the new fingerprint is recorded so the next check is quick again.
    """
    locked = [split for split in splits if split.is_locked]
    problems: dict[int, list] = {split.pk: ["The split is not locked."] for split in splits if not split.is_locked}
    if not locked:
        return problems
    member_ids: dict[int, list[tuple[int, str]]] = {split.pk: [] for split in locked}
    for split_id, hand_id, subset in SplitMember.objects.filter(split__in=locked).values_list(
            "split_id", "hand_id", "subset"):
        member_ids[split_id].append((hand_id, subset))
    # Taken before any row the manifest is built from is read, so a fingerprint recorded after a full
    # comparison never describes newer data than the comparison saw.
    fingerprints = _inputs_fingerprints(member_ids)
    recorded = {pk: (inputs, manifest) for pk, inputs, manifest in SplitFingerprint.objects.filter(
        split__in=locked).values_list("split_id", "inputs_sha256", "manifest_hash")}
    stale = []
    for split in locked:
        if recorded.get(split.pk) == (fingerprints[split.pk], split.manifest_hash):
            problems[split.pk] = []
        else:
            stale.append(split)
    if stale:
        problems.update(_compare_in_full(stale, member_ids, fingerprints))
    changed = {h for rows in problems.values() for h in rows if isinstance(h, int)}
    names = {h.pk: str(h) for h in Hand.objects.filter(pk__in=changed).select_related("participant")} \
        if changed else {}
    return {pk: [f"{names.get(h, h)}: label, frames or ROIs changed since the split was locked."
                 if isinstance(h, int) else h for h in rows] for pk, rows in problems.items()}


def _inputs_fingerprints(members: dict[int, list[tuple[int, str]]]) -> dict[int, str]:
    """datasets.inputs_fingerprint of each split's members (split id -> [(hand id, subset)]), in two queries."""
    hands = datasets.hand_fingerprints(hand for rows in members.values() for hand, _ in rows)
    named = datasets.named_primary()
    return {pk: datasets.inputs_fingerprint(rows, hands, named) for pk, rows in members.items()}


def _compare_in_full(splits: list[Split], member_ids: dict[int, list[tuple[int, str]]],
                     fingerprints: dict[int, str]) -> dict[int, list]:
    """Each split's changed hands (ids) or NotReady reason, from its manifest built again from the data."""
    hands = Hand.objects.in_bulk([hand for split in splits for hand, _ in member_ids[split.pk]])
    members = {split.pk: [(hands[hand], subset) for hand, subset in member_ids[split.pk]] for split in splits}
    annotations = datasets.load_annotations(hands)
    problems: dict[int, list] = {}
    unchanged: dict[int, list[dict]] = {}
    for split in splits:
        try:
            current = datasets.manifest_for(members[split.pk], annotations=annotations, domains=split.is_external)
        except datasets.NotReady as reason:
            problems[split.pk] = [f"A member hand is no longer ready: {reason}."]
            continue
        problems[split.pk] = _changed_hands(split, current)
        if not problems[split.pk]:
            unchanged[split.pk] = current
    if unchanged:
        same = [split for split in splits if split.pk in unchanged]
        _record_fingerprints(same, {split.pk: member_ids[split.pk] for split in same}, unchanged,
                             before=fingerprints)
    return problems


def _record_fingerprints(splits: list[Split], member_ids: dict[int, list[tuple[int, str]]],
                         manifests: dict[int, list[dict]], *, before: dict[int, str]) -> None:
    """Record the inputs' fingerprint of splits whose data were just found to give their locked manifest.

    `before` is the fingerprint taken before the data were read; a split whose fingerprint differs after
    (a write landed meanwhile) is not recorded, and its next check compares in full again.
    """
    after = _inputs_fingerprints(member_ids)
    for split in splits:
        if before.get(split.pk) != after[split.pk]:
            continue
        entries = manifests[split.pk]
        SplitFingerprint.objects.update_or_create(split=split, defaults={
            "manifest_hash": split.manifest_hash, "inputs_sha256": after[split.pk], "entries": len(entries),
            "hands": datasets.manifest_hands(entries)})


def split_fingerprint(split: Split) -> SplitFingerprint | None:
    """The recorded fingerprint and per-hand summary of a locked split (None before its first full check)."""
    return SplitFingerprint.objects.filter(split=split, manifest_hash=split.manifest_hash).first()


def _changed_hands(split: Split, current: list[dict]) -> list[int]:
    """Ids of the hands whose manifest entries differ from the locked ones (empty when the hash matches).

    The usual answer comes from the stored hash alone: the locked manifest (megabytes of JSON at study scale,
    deferred by the pages) is read only when the data changed, to name the hands.
    """
    if datasets.manifest_hash(current) == split.manifest_hash:
        return []
    locked = split.manifest or []
    if locked and "image_sha256" not in locked[0]:
        # Locked before frames were hashed: compare what that manifest recorded.
        current = [{k: v for k, v in e.items() if k != "image_sha256"} for e in current]
        if datasets.manifest_hash(current) == split.manifest_hash:
            return []
    before = {(e["hand"], e["frame"]): e for e in locked}
    after = {(e["hand"], e["frame"]): e for e in current}
    return sorted({key[0] for key in set(before) ^ set(after)}
                  | {key[0] for key in set(before) & set(after) if before[key] != after[key]})


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
    if shared.get("site_normalisation", "none") != "none" and not split.is_external:
        raise _invalid("site_normalisation", "Per-site normalisation needs the crops' sites, which only an external "
                                             "split's manifest records; launch without it, or make an external split.",
                       "normalisation_needs_sites")
    configs = {}
    for model_name in models:
        try:
            configs[model_name] = TrainConfig(model_name=model_name, pretrained=not random_init,
                                              weights_file=None if random_init else weights_file(model_name), **shared)
        except (TypeError, ValueError) as error:
            raise _invalid("hyperparameters", str(error), "bad_hyperparameters") from None
    for permutation_seed in (None, *range(1, null_controls + 1)):
        try:
            fit_val_test(split.manifest, seed=shared["seed"], permutation_seed=permutation_seed)
        except NoValidationSplit as error:
            which = "" if permutation_seed is None else f" (permuted-label control {permutation_seed})"
            raise _invalid("split", f"{error}{which}", "no_validation_split") from None
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
        queue_on_commit(TRAINING, run.pk)
    return experiment


def queue_run(run_id: int) -> None:
    from .tasks import train_model

    train_model.apply_async((run_id,), queue=settings.CTS_TRAINING_QUEUE)


TRAINING = JobKind(TrainingRun, queue=lambda run_id: queue_run(run_id))  # looked up on use: tests replace it


@transaction.atomic
def run_cancel(*, run: TrainingRun) -> TrainingRun:
    """Cancel a queued run now; a running one stops after its current epoch."""
    run = cancel_requested(TrainingRun, run.pk, stops="within a few seconds")
    if run.is_finished:
        experiment_compare_if_complete(experiment_id=run.experiment_id)
    return run


def runs_requeue_orphans(*, worker: str) -> list[int]:
    """Runs a worker of this name held when it died: queue them again now; they resume from their checkpoint.

    Runs of a worker that does not come back are queued again once their lease expires (common.jobs).
    """
    return requeue_running(TRAINING, Q(worker=worker))


# --- shared by the web (estimates) and the worker (training) ---------------------------------------------

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


def fit_val_test_sizes(hands: list[dict], *, seed: int) -> tuple[int, int, int]:
    """The lengths of fit_val_test's three lists, from a manifest's per-hand summary (datasets.manifest_hands)
    in manifest order, without its entries."""
    train = [h for h in hands if h["subset"] == "train"]
    val_hands = set(validation_hands([Candidate(h["hand"], h["participant"], "cts" if h["label"] else "control")
                                      for h in train], fraction=VALIDATION_FRACTION, seed=seed))
    return (sum(h["entries"] for h in train if h["hand"] not in val_hands),
            sum(h["entries"] for h in train if h["hand"] in val_hands),
            sum(h["entries"] for h in hands if h["subset"] == "test"))


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
    Experiment.objects.filter(pk=experiment_id).update(comparison=json_safe(comparison))
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
