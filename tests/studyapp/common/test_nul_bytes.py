"""A NUL byte in any search, filter or path is a 400 on PostgreSQL (which refuses NUL in text), never a 500."""

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

pytestmark = pytest.mark.django_db


def _parameterless_urls(patterns, prefix=""):
    """Every page and API list of the URL configuration that takes no argument in its path."""
    for pattern in patterns:
        route = str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            if route != "admin/":
                yield from _parameterless_urls(pattern.url_patterns, prefix + route)
        elif isinstance(pattern, URLPattern) and "<" not in route and "(?P" not in route:
            yield "/" + prefix + route.lstrip("^").rstrip("$")


URLS = sorted(set(_parameterless_urls(get_resolver().url_patterns)))
QUERIES = ["q=%00", "search=%00", "sex=fe%00male", "ordering=%00age", "hand=1%00", "clip=%00", "page=%00",
           "study_code%00=x"]


@pytest.mark.parametrize("url", URLS)
def test_nul_in_any_query_parameter_is_refused(client_for, api_for, url):
    client = client_for("admin")  # the admin reaches every page and every API list
    api = api_for("admin")
    for query in QUERIES:
        response = (api if url.startswith("/api/") else client).get(f"{url}?{query}")
        assert response.status_code == 400, (url, query, response.status_code)
        if url.startswith("/api/"):
            assert response.json()["code"] == "nul_byte"
        else:
            assert b'data-status="400"' in response.content and b"NUL character" in response.content


def test_the_cohort_search_of_the_issue_and_an_api_search_with_nul(client_for, api_for):
    assert client_for("coordinator").get("/cohort/?q=%00").status_code == 400
    assert api_for("coordinator").get("/api/participants/?search=CTS%00").status_code == 400
    assert api_for("annotator").get("/api/clips/?search=%00").status_code == 400
    assert client_for("coordinator").get("/cohort/?q=CTS").status_code == 200  # the search itself still works


def test_nul_in_the_path_is_refused(client_for):
    assert client_for("coordinator").get("/cohort/hands/%00/").status_code == 400
