from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from studyapp.ops.models import BackgroundJob

from .services import demo_job_queue


@login_required
@require_POST
@permission_required("protocol.change_studysettings", raise_exception=True)
def demo_start(request):
    """Queue the demo study for the worker; the cohort page shows its progress."""
    if BackgroundJob.objects.filter(kind="seed_demo", status__in=["queued", "running"]).exists():
        messages.error(request, "The demo study is already being seeded.")
        return redirect("cohort:hand-list")
    demo_job_queue()
    messages.success(request, "Seeding the demo study (100 phantom hands) in the background.")
    return redirect("cohort:hand-list")
