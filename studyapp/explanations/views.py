"""The explanation gallery of an experiment (PI, coordinator), its jobs, and the role-checked image files."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from mlworker.ml.constants import MODEL_LABELS
from studyapp.cohort.models import Hand
from studyapp.experiments.models import Experiment, TrainingRun

from . import selectors, services
from .filters import FrameExplanationFilter
from .models import ExplanationJob, FrameExplanation, Outcome
from .serializers import FILE_KINDS

FRAMES_PER_PAGE = 12
CONTENT_TYPES = {"attribution": "application/octet-stream"}


def _choices(experiment: Experiment) -> dict:
    hands = (Hand.objects.filter(explanations__job__run__experiment=experiment).distinct()
             .select_related("participant").order_by("participant__study_code", "side"))
    return {"models": sorted(set(experiment.runs.values_list("model_name", flat=True))),
            "methods": ExplanationJob.Method.choices, "outcomes": Outcome.choices,
            "groups": Hand.GroupChoice.choices, "stages": [1, 2, 3, 4, 5], "hands": hands}


def _gallery_page(rows, request, methods: list[str]):
    """One entry per (model, frame) on this page, each with its row per method shown."""
    pairs = list(rows.order_by("job__run__model_name", "hand__participant__study_code", "hand__side",
                               "frame__index").values_list("job__run_id", "frame_id").distinct())
    seen, ordered = set(), []
    for pair in pairs:
        if pair not in seen:
            seen.add(pair)
            ordered.append(pair)
    page = Paginator(ordered, FRAMES_PER_PAGE).get_page(request.GET.get("page"))
    wanted = set(page.object_list)
    by_pair: dict[tuple, dict] = {}
    for row in selectors.frame_explanations().filter(job__run_id__in={r for r, _ in wanted},
                                                     frame_id__in={f for _, f in wanted},
                                                     job__method__in=methods):
        by_pair.setdefault((row.job.run_id, row.frame_id), {})[row.job.method] = row
    entries = []
    for pair in page.object_list:
        cells = by_pair.get(pair, {})
        first = next(iter(cells.values()), None)
        if first is not None:
            entries.append({"row": first, "cells": [(method, cells.get(method)) for method in methods]})
    return page, entries


@login_required
@permission_required("explanations.view_frameexplanation", raise_exception=True)
def gallery(request, pk):
    experiment = get_object_or_404(Experiment.objects.select_related("split"), pk=pk)
    jobs = selectors.experiment_jobs(experiment)
    active = any(cell["job"] and not cell["job"].is_finished for run in jobs for cell in run["jobs"])
    if request.headers.get("HX-Request") and request.GET.get("part") == "jobs":
        return render(request, "explanations/_jobs.html", {"experiment": experiment, "jobs": jobs, "active": active,
                                                           "labels": MODEL_LABELS})
    base = selectors.frame_explanations().filter(job__run__experiment=experiment)
    filtered = FrameExplanationFilter(request.GET, queryset=base)
    rows = filtered.qs if filtered.is_valid() else base.none()
    method = request.GET.get("method", "")
    methods = [method] if method in ExplanationJob.Method.values else list(ExplanationJob.Method.values)
    page, entries = _gallery_page(rows, request, methods)
    query = request.GET.copy()
    query.pop("page", None)
    return render(request, "explanations/gallery.html", {
        "experiment": experiment, "jobs": jobs, "active": active, "filters": filtered, "labels": MODEL_LABELS,
        "errors": filtered.errors, "chosen": request.GET, "choices": _choices(experiment), "page": page,
        "entries": entries, "methods": [(m, ExplanationJob.Method(m).label) for m in methods],
        "summaries": selectors.summaries(rows, by=("model", "method")), "query": query.urlencode(),
        "n_rows": rows.count(), "n_without_outline": rows.filter(outline_source="none").count()})


@login_required
@require_POST
@permission_required("explanations.add_explanationjob", raise_exception=True)
def run_explain(request, pk):
    run = get_object_or_404(TrainingRun, pk=pk)
    methods = [m for m in request.POST.getlist("methods") if m] or None
    try:
        jobs = services.jobs_queue(run=run, methods=methods)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, f"{run.model_name}: explanation by {', '.join(j.get_method_display() for j in jobs)}"
                                  " queued on the training workers.")
    return redirect("explanations:gallery", pk=run.experiment_id)


@login_required
@require_POST
@permission_required("explanations.change_explanationjob", raise_exception=True)
def job_cancel(request, pk):
    job = get_object_or_404(ExplanationJob.objects.select_related("run"), pk=pk)
    try:
        job = services.job_cancel(job=job)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, f"{job}: cancelled." if job.is_finished else
                         f"{job.get_method_display()} of {job.run.model_name}: cancelling… it stops after the "
                         "current hand; the frames explained so far are kept.")
    return redirect("explanations:gallery", pk=job.run.experiment_id)


@login_required
@permission_required("explanations.view_frameexplanation", raise_exception=True)
def frame_file(request, pk, kind):
    """A crop, heatmap, overlay (PNG) or the map (.npz): results, so only for the roles that read them."""
    if kind not in FILE_KINDS:
        raise Http404("Ask for crop, heatmap, overlay or attribution.")
    row = get_object_or_404(FrameExplanation, pk=pk)
    try:
        handle = getattr(row, kind).open("rb")
    except (FileNotFoundError, ValueError):
        raise Http404("The file is missing from storage; explain the run again.") from None
    response = FileResponse(handle, content_type=CONTENT_TYPES.get(kind, "image/png"),
                            as_attachment=kind == "attribution",
                            filename=f"explanation_{row.pk}_{kind}.npz" if kind == "attribution" else None)
    response["Cache-Control"] = "private, max-age=3600"
    return response
