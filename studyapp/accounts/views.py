from django.contrib.auth import views as auth_views
from rest_framework import status
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.response import Response

from .forms import ThrottledAuthenticationForm
from .throttle import client_ip, locked_message, seconds_locked


class LoginView(auth_views.LoginView):
    authentication_form = ThrottledAuthenticationForm


class TokenView(ObtainAuthToken):
    """POST username and password for an API token; refused with 429 while sign-in is locked."""

    def post(self, request, *args, **kwargs):
        seconds = seconds_locked(str(request.data.get("username", "")), client_ip(request))
        if seconds:
            return Response({"detail": locked_message(seconds), "code": "locked"},
                            status=status.HTTP_429_TOO_MANY_REQUESTS, headers={"Retry-After": str(seconds)})
        return super().post(request, *args, **kwargs)
