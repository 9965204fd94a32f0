from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.db import transaction
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from studyapp.ops.models import BackgroundJob

from .tasks import seed_demo_study


@login_required
@require_POST
@permission_required("protocol.change_studysettings", raise_exception=True)
def demo_start(request):
    """Queue the demo study for the worker; the cohort page shows its progress."""
    if BackgroundJob.objects.filter(kind="seed_demo", status__in=["queued", "running"]).exists():
        messages.error(request, "The demo study is already being seeded.")
        return redirect("cohort:hand-list")
    job = BackgroundJob.objects.create(kind="seed_demo", params={"hands": 100, "seed": 2022}, total=100)
    transaction.on_commit(lambda: seed_demo_study.delay(job.pk))
    messages.success(request, "Seeding the demo study (100 phantom hands) in the background.")
    return redirect("cohort:hand-list")
