"""The worker's side of an explanation job: load the registered model, explain the run's test frames hand by
hand, store maps and images once, measure them against the nerve, then run the sanity check.

Imports torch (through mlworker): only the Celery task imports this module.
"""

from __future__ import annotations

import base64
import io
import logging
import tempfile
from collections import defaultdict
from importlib import metadata
from pathlib import Path

import cv2
import numpy as np
import torch
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from mlworker.explain import (attribution_shares, default_params, explain_crops, nerve_mask, outline_to_crop,
                              overlay_png, params_from_dict, ring_mask, sanity_check)
from mlworker.explain.overlay import heatmap_png
from mlworker.ml import TrainConfig, library_versions, load_crops, load_trained, select_device
from mlworker.ml.normalise import normalise_sites_like
from studyapp.annotations.models import NerveOutline
from studyapp.clips.models import Clip
from studyapp.common.jobs import Lease, LeaseLost, lease_kept
from studyapp.common.storage import local_path
from studyapp.experiments.services import fit_val_test
from studyapp.experiments.training import _samples
from studyapp.protocol.models import StudySettings

from . import rules
from .models import ExplanationJob, FrameExplanation
from .services import job_claim, job_finish

logger = logging.getLogger(__name__)
# Frames the randomisation check explains twice (trained and re-initialised model), spread over the test set.
SANITY_FRAMES = 8
EXTRA_LIBRARIES = ("lime", "scikit-image", "captum", "grad-cam", "scipy")


def explain_library_versions() -> dict[str, str]:
    versions = dict(library_versions())
    for name in EXTRA_LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def frames_per_hand(method: str) -> int | None:
    """The study setting: how many test frames of each hand this method explains (None: all)."""
    return getattr(StudySettings.current(), f"explain_frames_{method}")


def selected_entries(test_set: list[dict], per_hand: int | None) -> list[dict]:
    """Each test hand's frames (clip, frame order), thinned evenly to `per_hand`."""
    by_hand: dict[int, list[dict]] = defaultdict(list)
    for entry in sorted(test_set, key=lambda e: (e["hand"], e["clip"], e["index"])):
        by_hand[entry["hand"]].append(entry)
    return [entry for hand in sorted(by_hand) for entry in rules.evenly_spaced(by_hand[hand], per_hand)]


def outline_sources(test_set: list[dict]) -> dict[int, tuple[str, np.ndarray | None, int | None]]:
    """Per test frame: ("traced" | "carried" | "none", outline in frame px, the traced frame's id).

    The outline is the primary annotator's (the one whose ROIs made the crops); on a frame without one, the
    clip's nearest traced outline moves with the ROI centre (rules.carried_outline).
    """
    by_clip: dict[int, list[dict]] = defaultdict(list)
    for entry in test_set:
        by_clip[entry["clip"]].append(entry)
    traced: dict[int, dict[int, NerveOutline]] = defaultdict(dict)
    for outline in NerveOutline.objects.filter(frame__clip_id__in=by_clip).select_related("frame").order_by(
            "created_at", "pk"):
        traced[outline.frame.clip_id][(outline.annotator_id, outline.frame.index)] = outline  # latest wins
    sources = {}
    for clip_id, entries in by_clip.items():
        boxes = {e["index"]: e["box"] for e in entries}
        for entry in entries:
            # The rater whose ROI made this crop (frames of one clip may differ after an adjudication).
            mine = {index: o for (who, index), o in traced[clip_id].items() if who == entry["annotator"]}
            usable = sorted(index for index in mine if index in boxes)
            nearest = rules.nearest_traced(entry["index"], usable)
            if nearest is None:
                sources[entry["frame"]] = ("none", None, None)
                continue
            outline = mine[nearest]
            points = np.asarray(outline.points, float)
            if nearest == entry["index"]:
                sources[entry["frame"]] = ("traced", points, outline.frame_id)
            else:
                sources[entry["frame"]] = ("carried", rules.carried_outline(
                    points, source_box=boxes[nearest], target_box=entry["box"]), outline.frame_id)
    return sources


def _png(image: np.ndarray) -> bytes:
    ok, encoded = cv2.imencode(".png", image)
    if not ok:
        raise ValueError("The crop could not be encoded as PNG.")
    return encoded.tobytes()


def _npz(attribution: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, attribution=attribution.astype(np.float16))
    return buffer.getvalue()


def _store(name: str, content: bytes, *, replace: bool = True) -> str:
    """Save under a fixed name (a rerun overwrites what a crashed one left); `replace=False` keeps a copy."""
    if default_storage.exists(name):
        if not replace:
            return name
        default_storage.delete(name)
    return default_storage.save(name, ContentFile(content))


def explain_by_scale(method: str, model, images, mm_per_px: list[float], *, params, device, seed: int) -> np.ndarray:
    """Maps float32 (N, S, S) of crops whose scale may differ (clips of a hand, boxes clamped at a border):
    one explain_crops call per scale, since patch and smoothing sizes are given in millimetres."""
    size = images.shape[-1]
    maps = np.zeros((images.shape[0], size, size), np.float32)
    scales: dict[float, list[int]] = defaultdict(list)
    for i, value in enumerate(mm_per_px):
        scales[round(value, 9)].append(i)
    for scale, indices in scales.items():
        maps[indices] = explain_crops(method, model, images[indices], mm_per_px=scale, params=params,
                                      device=device, seed=seed)
    return maps


def crop_heatmaps(*, run, model, images, boxes: list, spacing_col_mm: float | None, methods: list[str],
                  device) -> list[dict[str, str]]:
    """Per crop {method: base64 PNG heatmap}, with the parameters and seed of the run's explanation jobs
    (the methods' defaults where none ran), so a predicted clip's maps read like the gallery's."""
    size = images.shape[-1]
    scales = [rules.mm_per_crop_px(box, spacing_col_mm=spacing_col_mm, size=size) for box in boxes]
    if any(scale is None for scale in scales):
        raise ValueError("The clip has no pixel spacing, so the methods' millimetre sizes can't be placed; "
                         "calibrate it first.")
    jobs = {job.method: job for job in ExplanationJob.objects.filter(run=run, method__in=methods)}
    out: list[dict[str, str]] = [{} for _ in boxes]
    for method in methods:
        job = jobs.get(method)
        params = params_from_dict(method, job.params) if job and job.params else default_params(method)
        maps = explain_by_scale(method, model, images, scales, params=params, device=device,
                                seed=job.seed if job else run.config.get("seed", 0))
        for i, attribution in enumerate(maps):
            out[i][method] = base64.b64encode(heatmap_png(attribution)).decode("ascii")
    return out


class _Context:
    """What every hand of one job needs: the model, the run's predictions, the outlines and spacings."""

    def __init__(self, job: ExplanationJob, cache: Path):
        run = job.run
        self.job, self.run, self.cache = job, run, cache
        self.config = TrainConfig.from_dict(run.config)
        self.device = select_device(self.config.device)
        self.model, trained = load_trained(local_path(run.weights.name, cache), device=self.device)
        self.size = trained.input_size
        self.params = params_from_dict(job.method, job.params) if job.params else default_params(job.method)
        _, _, self.test_set = fit_val_test(run.experiment.split.manifest, seed=self.config.seed)
        evaluation, predictions = run.evaluation or {}, run.predictions or {}
        self.threshold = float(evaluation.get("threshold", 0.5))
        self.frame_probability = dict(zip(predictions.get("frame_ids", []), predictions.get("probabilities", [])))
        hands = evaluation.get("hand", {})
        self.hand_probability = dict(zip(hands.get("hand_ids", []), hands.get("probabilities", [])))
        self.outlines = outline_sources(self.test_set)
        clip_ids = {e["clip"] for e in self.test_set}
        self.spacing = dict(Clip.objects.filter(pk__in=clip_ids).values_list("pk", "pixel_spacing_col_mm"))
        self.ring_mm = StudySettings.current().perineural_ring_mm

    def mm_per_px(self, entry: dict) -> float:
        value = rules.mm_per_crop_px(entry["box"], spacing_col_mm=self.spacing.get(entry["clip"]), size=self.size)
        if value is None:
            raise ValueError(f"Clip {entry['clip']} has no pixel spacing; calibrate it before explaining.")
        return value

    def crops(self, entries: list[dict]):
        """The crops as the run's model saw them: its per-site normalisation applied (TrainConfig.site_normalisation)."""
        images = load_crops(_samples(entries, self.cache), size=self.size).images
        record = (self.run.evaluation or {}).get("normalisation")  # normalise_sites_like passes None through
        return torch.from_numpy(normalise_sites_like(images.numpy(), record, [e.get("site", "") for e in entries]))

    def explain(self, entries: list[dict]) -> tuple[np.ndarray, np.ndarray]:
        """(crops uint8 (N, S, S), maps float32 (N, S, S)) of some test frames."""
        crops = self.crops(entries)
        maps = explain_by_scale(self.job.method, self.model, crops, [self.mm_per_px(e) for e in entries],
                                params=self.params, device=self.device, seed=self.job.seed)
        return crops[:, 0].numpy(), maps

    def shares(self, entry: dict, attribution: np.ndarray) -> tuple[dict | None, str, int | None]:
        source, points, source_frame = self.outlines.get(entry["frame"], ("none", None, None))
        if points is None:
            return None, "none", None
        nerve = nerve_mask(outline_to_crop(points, tuple(entry["box"]), self.size), self.size)
        ring = ring_mask(nerve, self.ring_mm / self.mm_per_px(entry))
        return attribution_shares(attribution, nerve, ring), source, source_frame

    def row(self, entry: dict, crop: np.ndarray, attribution: np.ndarray) -> FrameExplanation:
        run, method, frame_id = self.run, self.job.method, entry["frame"]
        stem = f"explanations/run_{run.pk}/{method}/frame_{frame_id}"
        shares, source, source_frame = self.shares(entry, attribution)
        probability = float(self.frame_probability[frame_id])
        hand_probability = float(self.hand_probability[entry["hand"]])
        return FrameExplanation(
            job=self.job, frame_id=frame_id, hand_id=entry["hand"], box=list(entry["box"]),
            mm_per_px=self.mm_per_px(entry),
            attribution=_store(f"{stem}.npz", _npz(attribution)),
            crop=_store(f"explanations/run_{run.pk}/crops/frame_{frame_id}.png", _png(crop), replace=False),
            heatmap=_store(f"{stem}_heatmap.png", heatmap_png(attribution)),
            overlay=_store(f"{stem}_overlay.png", overlay_png(crop, attribution)),
            probability=probability, label=entry["label"],
            frame_outcome=rules.outcome(entry["label"], probability, self.threshold),
            hand_probability=hand_probability,
            hand_outcome=rules.outcome(entry["label"], hand_probability, self.threshold),
            shares=shares, outline_source=source, outline_frame_id=source_frame)

    def sanity(self, entries: list[dict]) -> dict:
        """Model-parameter randomisation on frames spread over the selection (Adebayo et al. 2018)."""
        sample = rules.evenly_spaced(entries, SANITY_FRAMES)
        images = self.crops(sample)
        mm_per_px = float(np.median([self.mm_per_px(e) for e in sample]))

        def explain_fn(model, batch):
            return explain_crops(self.job.method, model, batch, mm_per_px=mm_per_px, params=self.params,
                                 device=self.device, seed=self.job.seed)

        return {**sanity_check(explain_fn, self.model, images, seed=self.job.seed),
                "frames": [e["frame"] for e in sample]}


def _cancelled(job_id: int) -> bool:
    return ExplanationJob.objects.filter(pk=job_id, cancel_requested=True).exists()


def job_run(*, job_id: int, task_id: str, worker: str) -> str:
    """Explain one run's test frames by one method; progress, errors and the sanity check go on the job row."""
    lease = job_claim(job_id=job_id, task_id=task_id, worker=worker)
    if lease is None:
        return "not claimed"
    with lease_kept(lease):
        try:
            return _explain(lease, ExplanationJob.objects.select_related("run__experiment__split").get(pk=job_id))
        except LeaseLost:
            return "taken over"


def _explain(lease: Lease, job: ExplanationJob) -> str:
    job_id = job.pk
    try:
        with tempfile.TemporaryDirectory(prefix=f"explain-{job_id}-") as tmp:
            context = _Context(job, Path(tmp))
            selected = selected_entries(context.test_set, frames_per_hand(job.method))
            done = set(FrameExplanation.objects.filter(job=job).values_list("frame_id", flat=True))
            ExplanationJob.objects.filter(pk=job_id).update(
                params=context.params.to_dict(), library_versions=explain_library_versions(),
                device=str(context.device), frames_total=len(selected),
                frames_done=sum(e["frame"] in done for e in selected))
            by_hand: dict[int, list[dict]] = defaultdict(list)
            for entry in selected:
                by_hand[entry["hand"]].append(entry)
            explained_now = 0
            for hand_id, entries in by_hand.items():
                lease.check()
                if _cancelled(job_id):
                    job_finish(lease, ExplanationJob.Status.CANCELLED)
                    return "cancelled"
                todo = [e for e in entries if e["frame"] not in done]
                if not todo:
                    continue
                crops, maps = context.explain(todo)
                rows = [context.row(entry, crop, attribution) for entry, crop, attribution in zip(todo, crops, maps)]
                with transaction.atomic():
                    FrameExplanation.objects.bulk_create(rows)
                    ExplanationJob.objects.filter(pk=job_id).update(
                        frames_done=FrameExplanation.objects.filter(job_id=job_id).count(),
                        heartbeat_at=timezone.now())
                explained_now += len(rows)
            sanity = job.sanity
            if selected and (explained_now or sanity is None):
                sanity = context.sanity(selected)
        job_finish(lease, ExplanationJob.Status.DONE, sanity=sanity)
    except LeaseLost:
        raise
    except Exception as error:
        logger.exception("Explanation job %s failed", job_id)
        job_finish(lease, ExplanationJob.Status.FAILED, error=f"{type(error).__name__}: {error}")
        raise
    return "done"
