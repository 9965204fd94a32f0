"""The PI's prediction page: a registered model's CTS probability for every frame of one clip, and the hand's."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse

from studyapp.clips.models import Clip

from .models import SplitMember, TrainingRun
from .prediction_jobs import prediction_job, prediction_queue

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


def _decorated(result: dict) -> dict:
    for frame in result["frames"]:
        frame["percent"] = round(100 * frame["probability"], 1)
        frame["colour"] = _colour(frame["probability"])
    return result


@login_required
@permission_required("experiments.view_experiment", raise_exception=True)
def clip_predict(request, pk):
    """GET shows the model picker, or with ?job=<id> a queued prediction (polled until done) and then its result;
    POST model=<run> queues the prediction on a worker and shows its job."""
    clip = get_object_or_404(Clip.objects.select_related("hand__participant"), pk=pk)
    models = list(registered_models())
    context = {"clip": clip, "hand": clip.hand, "participant": clip.hand.participant, "models": models,
               "run": None, "job": None, "result": None, "error": "", "subset": None,
               "frames_extracted": clip.frames.count()}
    if request.method == "POST":
        chosen = request.POST.get("model", "")
        run = next((m for m in models if str(m.pk) == chosen), None)
        if run is None:
            context["error"] = "Choose one of the registered models listed (done runs with saved weights)."
            return render(request, "experiments/predict.html", context, status=400)
        try:
            job = prediction_queue(run=run, clip=clip, requested_by=request.user)
        except ValidationError as error:
            context.update(run=run, error=" ".join(error.messages), subset=_membership(run, clip))
            return render(request, "experiments/predict.html", context, status=400)
        return redirect(f"{reverse('experiments:clip-predict', args=[clip.pk])}?job={job.pk}")
    job_id = request.GET.get("job", "")
    if job_id:
        job = prediction_job(job_id=int(job_id), clip=clip, user=request.user) if job_id.isdigit() else None
        if job is None:
            raise Http404("No such prediction of this clip.")
        run = next((m for m in models if m.pk == job.params["run"]), None)
        context.update(job=job, run=run, subset=_membership(run, clip) if run else None, error=job.error,
                       result=_decorated(job.result) if job.status == job.Status.DONE else None,
                       explained=bool(run) and run.explanation_jobs.filter(status="done").exists())
    return render(request, "experiments/predict.html", context)
