"""Every page and every API operation has an access rule per role in test_role_matrix, generated from the URL
configuration and the OpenAPI schema: a new endpoint without a rule fails here."""

import re
from types import SimpleNamespace

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, resolve
from drf_spectacular.generators import SchemaGenerator

from tests.studyapp.accounts.test_role_matrix import API, PLACEHOLDER, RESULTS_WEB, WEB

# URLs that are Django's or a library's own, each with its own tests upstream and its rule stated here.
OUTSIDE_THE_STUDY = {
    "login", "logout", "password_change", "password_change_done", "password_reset", "password_reset_done",
    "password_reset_confirm", "password_reset_complete",  # django.contrib.auth: open by design, or the user's own
    "api-token",  # POST a username and password for a token: open by design
    "api-root",  # DRF's browsable index of the router: lists URLs, no data
}
_DJANGO_ADMIN = "admin"  # staff only, by Django's admin site


def _url_names(patterns, namespace=None):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            if pattern.namespace == _DJANGO_ADMIN:
                continue
            inner = pattern.namespace and (f"{namespace}:{pattern.namespace}" if namespace else pattern.namespace)
            yield from _url_names(pattern.url_patterns, inner or namespace)
        elif isinstance(pattern, URLPattern) and pattern.name:
            yield f"{namespace}:{pattern.name}" if namespace else pattern.name
        elif isinstance(pattern, URLPattern):
            yield f"<unnamed {pattern.pattern}>"  # an unnamed URL cannot be given a rule: name it


def _name(url: str) -> str:
    match = resolve(url.split("?")[0])
    return match.view_name


def _ruled() -> set[tuple[str, str]]:
    ruled = {(_name(url(PLACEHOLDER)), method.upper()) for method, url, _, _ in API}
    ruled |= {(_name(url(PLACEHOLDER)), method.upper()) for method, url, _, _ in WEB}
    report = SimpleNamespace(pk=1, report=1)
    ruled |= {(_name(url(report)), method.upper()) for method, url, _ in RESULTS_WEB}
    return ruled


def test_every_named_url_has_a_rule_for_every_role():
    ruled = {name for name, _ in _ruled()}
    unruled = sorted(set(_url_names(get_resolver().url_patterns)) - ruled - OUTSIDE_THE_STUDY)
    assert not unruled, f"add an access rule per role to tests/studyapp/accounts/test_role_matrix.py for {unruled}"


@pytest.fixture(scope="module")
def schema_operations():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    return sorted((path, method.upper()) for path, item in schema["paths"].items() for method in item
                  if method in ("get", "post", "put", "patch", "delete"))


def test_every_api_operation_has_a_rule_for_every_role(schema_operations):
    ruled = _ruled()
    unruled = []
    for path, method in schema_operations:
        name = _name(re.sub(r"\{[^}]+\}", "1", path))
        if name not in OUTSIDE_THE_STUDY and (name, method) not in ruled \
                and not (method == "PUT" and (name, "PATCH") in ruled):  # PUT and PATCH share one permission
            unruled.append(f"{method} {path} ({name})")
    assert not unruled, "add an access rule per role to tests/studyapp/accounts/test_role_matrix.py for:\n" + \
        "\n".join(unruled)
