"""Dashboard pages: the cohort at a glance (clinical roles) and annotation progress and agreement (everyone)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required, permission_required
from django.core.files.storage import default_storage
from django.http import FileResponse, Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from studyapp.cohort.models import CsaMeasurement
from studyapp.experiments.models import Experiment

from . import experiment_panels, panels, reports, selectors, tables
from .figures import DataTable


@login_required
@permission_required("cohort.view_demographics", raise_exception=True)
def cohort_dashboard(request):
    data = selectors.cohort_dashboard_data()
    settings = data["settings"]
    method_label = CsaMeasurement.Method(settings.csa_baseline_method).label.lower()
    records = panels.hand_records(data["hands"])
    table_one = tables.table_one(records)
    age_panel, age_rows = panels.age_bands(records)
    return render(request, "dashboards/cohort.html", {
        "flow": panels.figures.flow_figure(data["flow"]),
        "table_one": table_one,
        "table_one_csv": DataTable(["variable", "summary", "control", "CTS", "test", "p", "SMD"],
                                   tables.table_one_csv_rows(table_one)),
        "csa_panels": [panels.csa_by_group(records, data["threshold"], method_label=method_label),
                       panels.csa_by_stage(records, data["threshold"], method_label=method_label)],
        "threshold": data["threshold"],
        "age_panel": age_panel, "age_rows": age_rows,
        "enrollment": panels.enrollment(data["hands"]),
        "review": panels.review_list(data["hands"], dml_ms=settings.dml_threshold_ms,
                                     sncv_m_s=settings.sncv_threshold_m_s),
        "method_label": method_label,
    })


@login_required
# Every rater's work side by side: for those who don't rate blind (coordinator, PI, admin).
@permission_required("annotations.view_all_raters", raise_exception=True)
def annotation_dashboard(request):
    data = selectors.annotation_dashboard_data()
    clip_panel, waiting = panels.clip_progress(data["clips"])
    return render(request, "dashboards/annotation.html", {
        "clip_panel": clip_panel, "waiting": waiting, "clips": data["clips"],
        "annotator_panel": panels.annotator_progress(data["annotators"]),
        "roi": data["roi"], "csa": data["csa"],
        "agreement_panels": panels.agreement_panels(data["roi"], data["csa"]),
    })


def _model_labels() -> dict[str, str]:
    # The experiments app has loaded mlworker.ml already; importing it here keeps this module light.
    from mlworker.ml.constants import MODEL_LABELS

    return MODEL_LABELS


@login_required
@permission_required("experiments.view_experiment", raise_exception=True)
def experiment_index(request):
    """The latest experiment's dashboard, or a page saying there is none yet."""
    choices = selectors.experiment_choices()
    if choices:
        return redirect("dashboards:experiment", pk=choices[0]["pk"])
    return render(request, "dashboards/experiment.html", {"data": None, "choices": []})


@login_required
@permission_required("experiments.view_experiment", raise_exception=True)
def experiment_dashboard(request, pk):
    data = selectors.experiment_dashboard_data(experiment_id=pk)
    if data is None:
        raise Http404("No such experiment.")
    labels = _model_labels()
    runs = data["runs"]
    active = any(run["status"] in ("queued", "running") for run in runs)
    training = experiment_panels.training_panels(runs, labels)
    status = [{"model": labels.get(run["model_name"], run["model_name"]), "status": run["status"],
               "epochs_done": run["epochs_done"], "epochs": run["epochs"]} for run in runs]
    if request.GET.get("live") == "1":  # the page polls this while runs train: curves and progress only
        return JsonResponse({"active": active, "status": status,
                             "figures": {panel.script_id: panel.figure for panel in training}})
    evaluated = [run for run in runs if run["evaluation"]]
    threshold = evaluated[0]["evaluation"].get("threshold", 0.5) if evaluated else 0.5
    hand_url = reverse("cohort:hand-detail", args=[0]).replace("/0/", "/{pk}/")
    comparison = data["experiment"]["comparison"] or {}
    calibration, brier = experiment_panels.calibration_panels(runs, labels) if evaluated else ([], [])
    return render(request, "dashboards/experiment.html", {
        "data": data, "experiment": data["experiment"], "choices": selectors.experiment_choices(),
        "active": active, "status": status, "training": training, "evaluated": bool(evaluated),
        "threshold": threshold,
        "roc": experiment_panels.roc_panels(runs, labels, comparison.get("csa_baseline"), threshold)
        if evaluated else [],
        "confusion": experiment_panels.confusion_panels(runs, labels),
        "hands": experiment_panels.hand_panels(runs, data["hands"], labels, threshold=threshold, hand_url=hand_url),
        "stages": experiment_panels.stage_panel(runs, data["hands"], labels, threshold=threshold, hand_url=hand_url)
        if evaluated else None,
        "calibration": calibration, "brier": brier,
        "delong": experiment_panels.delong_rows(comparison, labels),
        "report": _report_context(pk),
    })


def _report_context(experiment_id: int) -> dict:
    job = reports.report_job_latest(experiment_id=experiment_id)
    return {"experiment_id": experiment_id, "job": job, "busy": job is not None and job.status in ("queued", "running"),
            "available": reports.report_available(experiment_id=experiment_id)}


@login_required
@permission_required("experiments.view_experiment", raise_exception=True)
def report_status(request, pk):
    """The report's progress partial; it polls itself (htmx) while the job is queued or running."""
    get_object_or_404(Experiment, pk=pk)
    return render(request, "dashboards/_report_status.html", _report_context(pk))


@login_required
@require_POST
@permission_required("experiments.view_experiment", raise_exception=True)
def report_create(request, pk):
    get_object_or_404(Experiment, pk=pk)
    reports.report_queue(experiment_id=pk)
    if request.headers.get("HX-Request"):
        return render(request, "dashboards/_report_status.html", _report_context(pk))
    return redirect("dashboards:experiment", pk=pk)


@login_required
@permission_required("experiments.view_experiment", raise_exception=True)
def report_download(request, pk, kind):
    get_object_or_404(Experiment, pk=pk)
    name = reports.report_names(pk)[kind]
    if not default_storage.exists(name):
        raise Http404("No report yet: generate it first.")
    filename = f"experiment-{pk}-report.html" if kind == "html" else f"experiment-{pk}-bundle.zip"
    return FileResponse(default_storage.open(name, "rb"), as_attachment=True, filename=filename)
