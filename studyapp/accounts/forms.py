from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError

from .throttle import client_ip, locked_message, seconds_locked


class ThrottledAuthenticationForm(AuthenticationForm):
    """The login form, saying plainly when sign-in is locked instead of "didn't match"."""

    def clean(self):
        seconds = seconds_locked(self.cleaned_data.get("username") or "", client_ip(self.request))
        if seconds:
            raise ValidationError(locked_message(seconds), code="locked")
        return super().clean()
