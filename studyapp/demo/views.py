from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import ValidationError
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from .jobs import demo_job_start


@login_required
@require_POST
@permission_required("protocol.change_studysettings", raise_exception=True)
def demo_start(request):
    """Queue the demo study for the worker, or restart one that failed or lost its worker."""
    try:
        demo_job_start()
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, "Seeding the demo study (100 phantom hands at two simulated sites, and new "
                                  "hands awaiting their EPS) in the background.")
    return redirect("cohort:hand-list")
