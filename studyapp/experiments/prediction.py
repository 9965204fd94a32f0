"""Prediction with a registered model: per-frame and per-hand CTS probability of a clip. Worker-only (torch)."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from django.conf import settings
from django.core.exceptions import ValidationError

from mlworker.ml import CropSample, ModelCache, load_crops, load_trained, predict_proba, select_device
from mlworker.ml.normalise import normalise_like
from studyapp.clips.models import Clip
from studyapp.common.storage import local_path
from studyapp.ops import services as ops_services

from . import datasets
from .models import TrainingRun
from .prediction_jobs import PREDICTION
from .services import _invalid

# Loaded models of this worker process, shared by its threads; a few, since each holds its weights in memory.
_MODELS = ModelCache(size=settings.CTS_PREDICT_MODELS_CACHED)


def predict_clip(*, run: TrainingRun, clip, heatmaps: list[str] | tuple = (),
                 progress: Callable[[int, int, str], None] | None = None) -> dict:
    """Per-frame and per-hand CTS probability of a clip with confirmed ROIs, from a registered model.

    `heatmaps` names explanation methods whose per-frame heatmap PNGs (base64) come with each frame.
    """
    if run.status != TrainingRun.Status.DONE or not run.weights:
        raise _invalid("model", "This run has no registered model (it is not done).", "not_registered")
    rois = list(datasets.primary_rois(clip).values())
    if not rois:
        raise _invalid("clip", "The clip has no confirmed ROI to crop; annotate it first.", "no_roi")
    device = select_device("auto")
    with tempfile.TemporaryDirectory() as tmp:
        if progress:
            progress(0, len(rois), f"Loading {run.model_name}")
        with _MODELS.use(f"{run.weights_sha256}:{device}",
                         lambda: load_trained(local_path(run.weights.name, Path(tmp)), device=device)) as loaded:
            model, config = loaded
            samples = [CropSample(image_path=str(local_path(r.frame.image.name, Path(tmp))), box=r.box, label=0,
                                  hand_id=clip.hand_id, frame_id=r.frame_id) for r in rois]
            crops = load_crops(samples, size=config.input_size)
            normalisation = (run.evaluation or {}).get("normalisation")
            if normalisation:  # as the run's crops were (TrainConfig.site_normalisation)
                crops.images = torch.from_numpy(normalise_like(crops.images.numpy(), normalisation,
                                                               site=clip.site.code if clip.site_id else ""))
            probabilities = predict_proba(model, crops, device=device)
            maps = [{} for _ in rois]
            if progress:
                progress(len(rois), len(rois), f"Heatmaps of {len(rois)} frames ({', '.join(heatmaps)})"
                         if heatmaps else f"Predicted {len(rois)} frames")
            if heatmaps:
                from studyapp.explanations.explaining import crop_heatmaps

                try:
                    maps = crop_heatmaps(run=run, model=model, images=crops.images, boxes=[r.box for r in rois],
                                         spacing_col_mm=clip.pixel_spacing_col_mm, methods=list(heatmaps),
                                         device=device)
                except ValueError as error:
                    raise _invalid("heatmaps", str(error), "no_spacing") from None
    return {"model": run.model_name, "run": run.pk, "weights_sha256": run.weights_sha256, "clip": clip.pk,
            "hand": clip.hand_id,
            "frames": [{"frame": r.frame_id, "index": r.frame.index, "probability": float(p),
                        **({"heatmaps": m} if heatmaps else {})} for r, p, m in zip(rois, probabilities, maps)],
            "hand_probability": float(np.mean(probabilities))}


def prediction_run(*, job_id: int, worker: str = ""):
    """Run a queued prediction job, recording progress, result or error on its row. A second delivery is dropped."""
    return ops_services.background_job_run(PREDICTION, job_id, _predict, worker=worker)


def _predict(job, lease):
    job_id = job.pk

    def progress(done: int, total: int, message: str) -> None:
        ops_services.background_job_progress(lease, done=done, total=total, message=message)

    run = None
    try:
        run = TrainingRun.objects.get(pk=job.params["run"])
        clip = Clip.objects.get(pk=job.params["clip"])
        result = predict_clip(run=run, clip=clip, heatmaps=job.params.get("heatmaps", []), progress=progress)
    except ValidationError as error:
        return ops_services.background_job_fail(job_id, lease=lease, error=" ".join(error.messages))
    except (TrainingRun.DoesNotExist, Clip.DoesNotExist):
        return ops_services.background_job_fail(job_id, lease=lease, error="The model or the clip no longer exists.")
    except FileNotFoundError:
        return ops_services.background_job_fail(job_id, lease=lease, error=(
            f"The weights file of {run.model_name} (run {run.pk}) is missing from storage; the model can't be run "
            "until it is restored."))
    except Exception as error:
        ops_services.background_job_fail(job_id, lease=lease, error=f"The prediction stopped: {error}. Try again; if it fails "
                                                       "again, tell the study's administrator.")
        raise
    n = len(result["frames"])
    return ops_services.background_job_finish(lease, result=result, message=f"Predicted {n} frame{'' if n == 1 else 's'}.")
