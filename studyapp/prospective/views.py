"""The PI's prospective page: freeze the model, follow the blinded predictions and their accrual."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from . import selectors, services
from .forms import FreezeForm, WidthForm
from .models import ProspectiveModel


def _figures(dashboard: dict) -> list:
    """The accrual and calibration panels (figure, data table, caption), once a case is scored."""
    if dashboard["summary"] is None:
        return []
    from studyapp.dashboards.prospective_figures import accrual_figure, calibration_figure

    return [accrual_figure(dashboard["accrual"]), calibration_figure(dashboard["summary"])]


@login_required
@permission_required("prospective.view_prospectiveoutcome", raise_exception=True)
def dashboard(request, pk: int | None = None):
    """The active (or a chosen) frozen model: sealed and scored cases, exclusions, statistics beside the
    retrospective test results, and the cases still needed for the CI width asked."""
    model = get_object_or_404(ProspectiveModel, pk=pk) if pk else services.prospective_model_active()
    width = WidthForm(request.GET or None)
    target_width = width.cleaned_data["target_width"] if width.is_bound and width.is_valid() else 0.2
    context = {"model": model, "models": selectors.models_frozen(), "width_form": width,
               "freeze_form": FreezeForm(), "dashboard": None, "figures": [], "cases": []}
    if model is not None:
        context["dashboard"] = selectors.prospective_dashboard(model=model, target_width=target_width)
        context["figures"] = _figures(context["dashboard"])
        context["cases"] = selectors.predictions_for(user=request.user, model=model)
    return render(request, "prospective/dashboard.html", context, status=400 if width.errors else 200)


@login_required
@permission_required("prospective.freeze_prospectivemodel", raise_exception=True)
@require_POST
def freeze(request):
    form = FreezeForm(request.POST)
    if form.is_valid():
        try:
            model = services.prospective_model_freeze(run=form.cleaned_data["run"], frozen_by=request.user,
                                                      reason=form.cleaned_data["reason"])
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(request, f"{model.run.model_name} is frozen as the study's prospective model; hands "
                                      "without EPS whose ROIs are confirmed are being predicted (blinded).")
            return redirect("prospective:dashboard")
    model = services.prospective_model_active()
    return render(request, "prospective/dashboard.html", {
        "model": model, "models": selectors.models_frozen(), "width_form": WidthForm(), "freeze_form": form,
        "dashboard": None, "figures": [], "cases": []}, status=400)
