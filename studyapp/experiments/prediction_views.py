"""The PI's prediction page: a registered model's CTS probability for every frame of one clip, and the hand's."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, render

from studyapp.clips.models import Clip

from .models import SplitMember, TrainingRun

# Frames are coloured from this (CTS probability 1) to grey (0) on the strip.
_CTS_RGB = (192, 57, 43)
_ZERO_RGB = (230, 230, 230)


def registered_models():
    """Done runs with weights: the models a clip can be run through, newest experiment first."""
    return (TrainingRun.objects.filter(status=TrainingRun.Status.DONE).exclude(weights="")
            .select_related("experiment__split").order_by("-experiment__created_at", "model_name"))


def _membership(run: TrainingRun, clip: Clip) -> str | None:
    """'train' or 'test' when the clip's hand was in the run's split, else None."""
    return (SplitMember.objects.filter(split_id=run.experiment.split_id, hand_id=clip.hand_id)
            .values_list("subset", flat=True).first())


def _colour(probability: float) -> str:
    r, g, b = (round(z + (c - z) * probability) for c, z in zip(_CTS_RGB, _ZERO_RGB))
    return f"rgb({r}, {g}, {b})"


def _run_prediction(run: TrainingRun, clip: Clip) -> tuple[dict | None, str]:
    """(result, error message): the model runs here, in the request, as the API's predict does."""
    # Imported on use: the model code pulls in torch, which this page's module should not load at import.
    from . import prediction

    try:
        result = prediction.predict_clip(run=run, clip=clip)
    except ValidationError as error:
        return None, " ".join(error.messages)
    except FileNotFoundError:
        return None, (f"The weights file of {run.model_name} (run {run.pk}) is missing from storage; "
                      "the model can't be run until it is restored.")
    for frame in result["frames"]:
        frame["percent"] = round(100 * frame["probability"], 1)
        frame["colour"] = _colour(frame["probability"])
    return result, ""


@login_required
@permission_required("experiments.view_experiment", raise_exception=True)
def clip_predict(request, pk):
    """GET shows the model picker; GET ?model=<run> also runs it on the clip (no state changes)."""
    clip = get_object_or_404(Clip.objects.select_related("hand__participant"), pk=pk)
    models = list(registered_models())
    context = {"clip": clip, "hand": clip.hand, "participant": clip.hand.participant, "models": models,
               "run": None, "result": None, "error": "", "subset": None, "frames_extracted": clip.frames.count()}
    chosen = request.GET.get("model", "")
    if chosen:
        run = next((m for m in models if str(m.pk) == chosen), None)
        if run is None:
            context["error"] = "Choose one of the registered models listed (done runs with saved weights)."
            return render(request, "experiments/predict.html", context, status=400)
        result, error = _run_prediction(run, clip)
        context.update(run=run, result=result, error=error, subset=_membership(run, clip),
                       explained=run.explanation_jobs.filter(status="done").exists())
    return render(request, "experiments/predict.html", context)
