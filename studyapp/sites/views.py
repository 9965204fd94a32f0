"""The PI's site pages: the list (with clips still missing a site), create and edit, delete an unused site."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from studyapp.common.concurrency import StaleVersion
from studyapp.common.forms import add_service_errors

from . import selectors, services
from .forms import SiteForm
from .models import Site

MISSING_SHOWN = 100


@login_required
@permission_required("sites.view_site", raise_exception=True)
def site_list(request):
    missing = selectors.clips_without_site()
    return render(request, "sites/site_list.html", {
        "sites": selectors.site_list(), "missing": missing[:MISSING_SHOWN], "missing_count": missing.count(),
        "can_manage": request.user.has_perm("sites.change_site")})


@login_required
@permission_required("sites.add_site", raise_exception=True)
def site_create(request):
    form = SiteForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = dict(form.cleaned_data)
        data.pop("version", None)
        try:
            site = services.site_create(history_user=request.user, **data)
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            messages.success(request, f"Added site {site.code}.")
            return redirect("sites:list")
    return render(request, "sites/site_form.html", {"form": form, "title": "Add a site"},
                  status=400 if form.errors else 200)


@login_required
@permission_required("sites.change_site", raise_exception=True)
def site_edit(request, pk):
    site = get_object_or_404(Site, pk=pk)
    # The form validates its own copy, so a refused edit never shows as if saved.
    form = SiteForm(request.POST or None, instance=Site.objects.get(pk=pk))
    if request.method == "POST" and form.is_valid():
        try:
            services.site_update(site=site, expected_version=form.cleaned_data["version"],
                                 history_user=request.user, **form.edited())
        except StaleVersion as error:
            form.show_stale(error)
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            messages.success(request, f"Saved site {form.cleaned_data['code']}.")
            return redirect("sites:list")
    return render(request, "sites/site_form.html", {"form": form, "site": site, "title": f"Edit site {site.code}"},
                  status=400 if form.errors else 200)


@login_required
@require_POST
@permission_required("sites.delete_site", raise_exception=True)
def site_delete(request, pk):
    site = get_object_or_404(Site, pk=pk)
    try:
        services.site_delete(site=site)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, f"Deleted site {site.code}.")
    return redirect("sites:list")
