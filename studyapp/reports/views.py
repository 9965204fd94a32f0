"""The study report's pages: generate (PI), follow its progress, download the HTML file and the bundle.

The files are in Django's default storage and are served only here, to those who may read the experiment's
results (PI, admin): never through MEDIA_URL.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import ValidationError
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from studyapp.experiments.models import Experiment

from . import services
from .models import StudyReport


@login_required
@require_POST
@permission_required("experiments.launch_experiment", raise_exception=True)
def report_generate(request, pk):
    experiment = get_object_or_404(Experiment, pk=pk)
    try:
        services.report_queue(experiment=experiment, requested_by=request.user)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, "Generating the study report in the background; its progress shows below.")
    return redirect("experiments:experiment", pk=pk)


@login_required
@permission_required("experiments.view_experiment", raise_exception=True)
def report_status(request, pk):
    """The report box of the experiment page (htmx polls it while a report is being made)."""
    experiment = get_object_or_404(Experiment, pk=pk)
    return render(request, "reports/_report.html", {"experiment": experiment, "report": experiment.reports.first()})


@login_required
@permission_required("experiments.view_experiment", raise_exception=True)
def report_download(request, pk, kind):
    report = get_object_or_404(StudyReport.objects.select_related("experiment"), pk=pk,
                               status=StudyReport.Status.DONE)
    field = {"html": report.html, "bundle": report.bundle}.get(kind)
    if not field:
        raise Http404("No such file.")
    try:
        handle = field.open("rb")
    except FileNotFoundError:
        raise Http404("The report's file is missing from storage; generate the report again.") from None
    return FileResponse(handle, as_attachment=True, filename=services.report_filename(report, kind),
                        content_type="text/html; charset=utf-8" if kind == "html" else "application/zip")
