"""Request checks that hold for every page and API endpoint alike."""

from django.http import JsonResponse
from django.shortcuts import render

NUL = "\x00"
NUL_MESSAGE = "The request contains a NUL character (%00), which no search, filter or field accepts."


class RefuseNulBytesMiddleware:
    """Answer 400 to a NUL byte in the path or a query parameter, before any view passes it to the database.

    PostgreSQL refuses NUL in text, so a search or filter carrying one would otherwise end in a 500.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if NUL in request.path or any(NUL in key or any(NUL in value for value in values)
                                      for key, values in request.GET.lists()):
            if request.path.startswith("/api/"):
                return JsonResponse({"detail": NUL_MESSAGE, "code": "nul_byte"}, status=400)
            return render(request, "400.html", {"message": NUL_MESSAGE}, status=400)
        return self.get_response(request)
