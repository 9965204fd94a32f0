"""Fields a role may not see are out of reach in every way the API offers: output, filters, ordering, search.

DRF's filter backends, less any filter, ordering or search path that reaches a field hidden from the user
(`accounts.roles.HIDDEN_FIELDS_BY_PERM`), so it can never narrow or sort the results: that would reveal the value
as surely as showing it. Such a parameter is ignored, as DRF ignores an unknown one.
"""

from django_filters.rest_framework import DjangoFilterBackend
from rest_framework.filters import OrderingFilter, SearchFilter

from studyapp.accounts.roles import hidden_fields


def reaches_hidden(lookup: str, hidden: frozenset[str]) -> bool:
    """Whether a filter/ordering/search path (`-age`, `hand__group`, `^study_code`) touches a hidden field."""
    return any(part in hidden for part in lookup.lstrip("-^=@$").split("__"))


class VisibleFieldsFilterBackend(DjangoFilterBackend):
    def get_filterset(self, request, queryset, view):
        filterset = super().get_filterset(request, queryset, view)
        hidden = hidden_fields(request.user)
        if filterset is not None and hidden:
            for name, declared in list(filterset.filters.items()):
                if reaches_hidden(name, hidden) or reaches_hidden(declared.field_name or "", hidden):
                    del filterset.filters[name]
        return filterset


class VisibleOrderingFilter(OrderingFilter):
    def get_valid_fields(self, queryset, view, context=None):
        fields = super().get_valid_fields(queryset, view, context)
        request = (context or {}).get("request")
        hidden = hidden_fields(request.user) if request is not None else frozenset()
        return [(name, label) for name, label in fields if not reaches_hidden(name, hidden)]


class VisibleSearchFilter(SearchFilter):
    def get_search_fields(self, view, request):
        hidden = hidden_fields(request.user)
        return [name for name in super().get_search_fields(view, request) or () if not reaches_hidden(name, hidden)]
