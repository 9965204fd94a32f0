"""Response headers a deployment needs beyond Django's SecurityMiddleware: a content security policy."""

from django.conf import settings


class ContentSecurityPolicyMiddleware:
    """Sets `Content-Security-Policy` (settings.CTS_CONTENT_SECURITY_POLICY) on every response without one.

    Pages load scripts only from this site's static files (no inline scripts, no CDN), so an injected
    `<script>` in a participant note cannot run.
    """

    def __init__(self, get_response):
        self.get_response = get_response
        self.policy = settings.CTS_CONTENT_SECURITY_POLICY

    def __call__(self, request):
        response = self.get_response(request)
        if self.policy and "Content-Security-Policy" not in response:
            response["Content-Security-Policy"] = self.policy
        return response


def csp_override(view, policy: str):
    """`view` answering with its own policy (a third-party page that needs more than the site's)."""

    def wrapped(request, *args, **kwargs):
        response = view(request, *args, **kwargs)
        response["Content-Security-Policy"] = policy
        return response

    wrapped.csrf_exempt = getattr(view, "csrf_exempt", False)
    return wrapped
