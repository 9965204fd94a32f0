"""PI pages: make and lock splits, launch training, watch progress, read results."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from mlworker.ml.constants import MODEL_LABELS
from studyapp.common.forms import add_service_errors
from studyapp.dashboards import experiment_selectors, experiment_views
from studyapp.reports import selectors as report_selectors

from . import selectors, services
from .forms import LaunchForm, SplitForm
from .models import Experiment, Split, TrainingRun


@login_required
@permission_required("experiments.view_split", raise_exception=True)
def index(request):
    form = SplitForm(request.POST or None)
    if request.method == "POST":
        if not request.user.has_perm("experiments.add_split"):
            raise PermissionDenied
        if form.is_valid():
            try:
                split = services.split_create(created_by=request.user, **form.cleaned_data)
            except ValidationError as error:
                add_service_errors(form, error)
            else:
                messages.success(request, f"Split {split} made: check its counts, then lock it.")
                return redirect("experiments:index")
    return render(request, "experiments/index.html", {
        "form": form, "splits": selectors.split_rows(),
        "experiments": Experiment.objects.select_related("split").defer("split__manifest")[:50]})


@login_required
@require_POST
@permission_required("experiments.lock_split", raise_exception=True)
def split_lock(request, pk):
    try:
        split = services.split_lock(split=get_object_or_404(Split, pk=pk), locked_by=request.user)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return redirect("experiments:split", pk=pk)
    messages.success(request, f"Locked {split}: manifest {split.manifest_hash[:12]}… of "
                              f"{len(split.manifest)} crops. Its members and data are frozen; launch training below.")
    return redirect("experiments:split", pk=split.pk)


@login_required
@permission_required("experiments.view_split", raise_exception=True)
def split_detail(request, pk):
    # The manifest (megabytes at study scale) is read only to launch: the page shows its recorded summary.
    split = get_object_or_404(Split.objects.defer("manifest"), pk=pk)
    form = LaunchForm(request.POST or None, initial={"name": f"{split} models"})
    if request.method == "POST":
        if not request.user.has_perm("experiments.launch_experiment"):
            raise PermissionDenied
        if form.is_valid():
            data = form.cleaned_data
            try:
                experiment = services.experiment_launch(
                    split=split, name=data["name"], models=data["models"], random_init=data["random_init"],
                    hyperparameters={k: data[k] for k in LaunchForm.HYPERPARAMETERS}, created_by=request.user,
                    null_controls=data["null_controls"] or 0)
            except ValidationError as error:
                add_service_errors(form, error)
            else:
                return redirect("experiments:experiment", pk=experiment.pk)
    members = split.members.select_related("hand__participant")
    problems = services.split_verify(split) if split.is_locked else []
    return render(request, "experiments/split.html", {
        "split": split, "counts": services.split_counts(split), "members": members, "problems": problems,
        "entries": selectors.manifest_summary(split)["entries"] if split.is_locked else 0,
        "form": form, "weights": selectors.weights_availability(),
        "estimate": _estimate(split, form) if split.is_locked and not problems else None})


def _estimate(split: Split, form: LaunchForm) -> dict:
    """The estimate for the form's current settings; a setting not (validly) given counts as its default."""
    chosen = {name: form.fields[name].initial for name in ("models", "epochs", "input_size", "seed", "null_controls")}
    if form.is_bound:
        form.is_valid()
        chosen.update({name: form.cleaned_data.get(name, chosen[name]) for name in chosen})
        chosen["models"] = form.cleaned_data.get("models", [])
    return selectors.launch_estimates(split, models=list(chosen["models"]), epochs=chosen["epochs"],
                                      input_size=chosen["input_size"], seed=chosen["seed"],
                                      null_controls=chosen["null_controls"] or 0)


@login_required
@permission_required("experiments.view_split", raise_exception=True)
def launch_estimate(request, pk):
    """The launch form's estimate for the settings being chosen (htmx, on every change of the form)."""
    split = get_object_or_404(Split.objects.defer("manifest"), pk=pk, status=Split.Status.LOCKED)
    return render(request, "experiments/_estimate.html", {"estimate": _estimate(split, LaunchForm(request.GET))})


@login_required
@permission_required("experiments.view_experiment", raise_exception=True)
def experiment_detail(request, pk):
    # The split's manifest (every frame) is not shown here: not read either.
    experiment = get_object_or_404(Experiment.objects.select_related("split", "null_of").defer("split__manifest"),
                                   pk=pk)
    runs = experiment_selectors.experiment_runs(experiment)
    for run in runs:
        run.kept_note = selectors.kept_weights_note(run) if run.status == TrainingRun.Status.DONE else ""
    finished = sum(run.is_finished for run in runs)
    context = {"experiment": experiment, "runs": runs, "labels": MODEL_LABELS, "finished": finished,
               "active": any(not run.is_finished for run in runs),
               "training_panels": experiment_views.training_panels(runs, MODEL_LABELS)}
    if request.headers.get("HX-Request"):
        if request.GET.get("finished", str(finished)) != str(finished):
            # A run ended since the page was drawn: reload it whole, so its results appear.
            return HttpResponse(headers={"HX-Refresh": "true"})
        return render(request, "experiments/_runs.html", context)
    explanations = experiment_selectors.explanation_summaries(experiment)
    return render(request, "experiments/experiment.html", {
        **context, **experiment_views.results(experiment, runs, MODEL_LABELS), "explanations": explanations,
        "attribution": experiment_views.attribution_panel(explanations, MODEL_LABELS),
        "null": selectors.null_distribution(experiment), "report": report_selectors.latest_report(experiment)})


@login_required
@require_POST
@permission_required("experiments.launch_experiment", raise_exception=True)
def run_cancel(request, pk):
    run = get_object_or_404(TrainingRun, pk=pk)
    try:
        run = services.run_cancel(run=run)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, f"{run.model_name}: cancelled." if run.is_finished else
                         f"{run.model_name}: cancelling… it stops within a few seconds, and keeps no weights.")
    return redirect("experiments:experiment", pk=run.experiment_id)
