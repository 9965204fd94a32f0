"""Annotators learn nothing about demographics or diagnosis from the API: every filter, ordering and search
parameter of every viewset, per role, reaches only fields that role is shown (issue 14)."""

import pytest
from django.core.exceptions import FieldDoesNotExist
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from studyapp.api_urls import router
from studyapp.common.visibility import VisibleFieldsFilterBackend, VisibleOrderingFilter, VisibleSearchFilter
from tests.factories import make_hand

pytestmark = pytest.mark.django_db

ROLES = ["coordinator", "annotator", "pi", "admin"]
# Filters computed from a field rather than naming one: each says which shown-or-hidden field it reveals.
DERIVED = {("hands", "included"): "exclusion_reason", ("hands", "needs_restaging"): "needs_restaging"}


@pytest.fixture
def shown(api_for):
    """Per role, the fields the API shows of a participant and of a hand; hidden = the admin's less the role's."""
    hand = make_hand(eps={"dml_ms": 5.0, "sncv_m_s": 45.0})
    keys = {role: set(api_for(role).get(f"/api/participants/{hand.participant_id}/").json())
            | set(api_for(role).get(f"/api/hands/{hand.pk}/").json()) for role in ROLES}
    return {role: {"hidden": keys["admin"] - keys[role]} for role in ROLES}


def _view(viewset, user):
    request = Request(APIRequestFactory().get("/"))
    request.user = user
    view = viewset(request=request, format_kwarg=None, action="list", kwargs={})
    allowed = all(permission.has_permission(request, view) for permission in view.get_permissions())
    return request, view, allowed


def _path_parts(model, path: str, prefix: str, name: str) -> list[str]:
    """The model fields a lookup path walks through; a derived filter names the field it reveals."""
    if (prefix, name) in DERIVED:
        return [DERIVED[prefix, name]]
    parts = []
    for part in path.split("__"):
        try:
            field = model._meta.get_field(part)
        except FieldDoesNotExist:
            pytest.fail(f"/api/{prefix}/ filter {name!r} ({path}) is neither a model field path nor in DERIVED: "
                        "say which field it reveals")
        parts.append(part)
        model = field.related_model or model
    return parts


def _parameters(prefix, viewset, request, view):
    """Every filter, ordering and search parameter the view accepts from this user, as (kind, name, fields)."""
    queryset = view.get_queryset()
    model = queryset.model
    filterset = VisibleFieldsFilterBackend().get_filterset(request, queryset, view)
    for name, declared in (filterset.filters.items() if filterset is not None else []):
        yield "filter", name, _path_parts(model, declared.field_name or name, prefix, name)
    for name, _ in VisibleOrderingFilter().get_valid_fields(queryset, view, {"request": request}):
        yield "ordering", name, name.split("__")
    for name in VisibleSearchFilter().get_search_fields(view, request):
        yield "search", name, name.lstrip("^=@$").split("__")


@pytest.mark.parametrize("role", ROLES)
def test_no_filter_ordering_or_search_reaches_a_field_the_role_is_not_shown(users, shown, role):
    hidden, checked, leaks = shown[role]["hidden"], 0, []
    for prefix, viewset, _ in router.registry:
        request, view, allowed = _view(viewset, users[role])
        if not allowed:
            continue
        for kind, name, fields in _parameters(prefix, viewset, request, view):
            checked += 1
            if hidden & set(fields):
                leaks.append(f"/api/{prefix}/ {kind} {name!r} reaches {sorted(hidden & set(fields))}")
    assert checked > 10
    assert not leaks, leaks


def test_what_an_annotator_is_not_shown_is_hidden_indeed(shown):
    assert {"sex", "age", "recruitment", "group", "stage", "exclusion_reason"} <= shown["annotator"]["hidden"]
    assert not shown["pi"]["hidden"] and not shown["coordinator"]["hidden"]


def test_sex_and_age_neither_filter_nor_sort_for_an_annotator_but_do_for_the_pi(api_for):
    for code, sex, age in (("CTS-A", "female", 70), ("CTS-B", "male", 20), ("CTS-C", "female", 45)):
        make_hand(study_code=code, sex=sex, age=age)

    def codes(role, query):
        return [p["study_code"] for p in api_for(role).get(f"/api/participants/?{query}").json()["results"]]

    everyone = codes("annotator", "")
    for query in ("sex=female", "sex=male", "ordering=age", "ordering=-age", "ordering=sex"):
        assert codes("annotator", query) == everyone, query
    assert codes("pi", "sex=female") == ["CTS-A", "CTS-C"]
    assert codes("pi", "ordering=age") == ["CTS-B", "CTS-C", "CTS-A"]
    assert codes("coordinator", "ordering=-age") == ["CTS-A", "CTS-C", "CTS-B"]
