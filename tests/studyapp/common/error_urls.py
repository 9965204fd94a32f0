"""The site's URLs plus one view that fails, to see the 500 page as a user would."""

from django.urls import path

from studyapp.urls import urlpatterns as site


def fail(request):
    raise RuntimeError("a bug in a view")


urlpatterns = [*site, path("fail/", fail)]
