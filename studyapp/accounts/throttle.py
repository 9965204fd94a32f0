"""Failed-login throttling: after too many failures for one username (or from one address) sign-in is refused
for a while, on the login page and the API token endpoint alike.

Failures live in the database (not a per-process cache), so every gunicorn worker sees the same count.
"""

from __future__ import annotations

import math
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.core.exceptions import PermissionDenied
from django.dispatch import receiver
from django.utils import timezone

from .models import FailedLogin

# One address may try several usernames (a shared clinic NAT): its own limit is this many times larger.
ADDRESS_FACTOR = 4


def client_ip(request) -> str | None:
    return request.META.get("REMOTE_ADDR") if request is not None else None


def seconds_locked(username: str, ip: str | None) -> int:
    """Seconds until `username` (or `ip`) may try again; 0 when sign-in is allowed."""
    limit, window = settings.CTS_LOGIN_MAX_FAILURES, timedelta(seconds=settings.CTS_LOGIN_LOCKOUT_S)
    if limit <= 0:
        return 0
    since = timezone.now() - window
    recent = FailedLogin.objects.filter(at__gte=since)
    for failures, allowed in ((recent.filter(username=(username or "").lower()), limit),
                              (recent.filter(ip=ip) if ip else recent.none(), limit * ADDRESS_FACTOR)):
        times = list(failures.order_by("-at").values_list("at", flat=True)[:allowed])
        if len(times) >= allowed:  # locked until the oldest of the last `allowed` failures leaves the window
            return max(1, math.ceil((times[-1] + window - timezone.now()).total_seconds()))
    return 0


def locked_message(seconds: int) -> str:
    minutes = max(1, math.ceil(seconds / 60))
    return (f"Too many failed sign-ins for this account or from this address. Try again in {minutes} "
            f"minute{'s' if minutes != 1 else ''}, or ask an administrator to reset the password.")


class ThrottledModelBackend(ModelBackend):
    """The model backend, refusing (without checking the password) while a username or address is locked."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if username is not None and seconds_locked(username, client_ip(request)):
            raise PermissionDenied  # stops every backend; user_login_failed is still sent
        return super().authenticate(request, username=username, password=password, **kwargs)


@receiver(user_login_failed, dispatch_uid="studyapp.accounts.record_failed_login")
def _record_failure(sender, credentials, request=None, **kwargs):
    FailedLogin.objects.create(username=(credentials.get("username") or "")[:150].lower(), ip=client_ip(request))


@receiver(user_logged_in, dispatch_uid="studyapp.accounts.clear_failed_logins")
def _clear_failures(sender, request, user, **kwargs):
    FailedLogin.objects.filter(username=user.get_username().lower()).delete()
