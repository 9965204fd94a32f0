"""Prediction with a registered model: per-frame and per-hand CTS probability of a clip. Worker-only (torch)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from mlworker.ml import CropSample, load_crops, load_trained, predict_proba, select_device
from studyapp.common.storage import local_path

from . import datasets
from .models import TrainingRun
from .services import _invalid

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
