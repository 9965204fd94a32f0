"""Two PIs saving sites at the same moment on PostgreSQL: an institution name still ends up meaning one site."""

import pytest
from django.core.exceptions import ValidationError
from django.db import connection

from studyapp.sites import services
from studyapp.sites.models import Site
from tests.studyapp.cohort.test_concurrency import _at_once

pytestmark = [pytest.mark.django_db(transaction=True),
              pytest.mark.skipif(connection.vendor != "postgresql", reason="advisory locks need PostgreSQL")]


def test_two_sites_taking_one_institution_name_at_once_leave_one_owner():
    for trial in range(8):
        name = f"Shared Hospital {trial}"
        results = _at_once(
            lambda: services.site_create(code=f"a{trial}", name="A", institution_names=[name]),
            lambda: services.site_create(code=f"b{trial}", name="B", institution_names=[name.upper()]))
        refused = [r for r in results if isinstance(r, ValidationError)]
        assert len(refused) == 1, results
        assert refused[0].error_dict["institution_names"][0].code == "alias_taken"
        owners = [s.code for s in Site.objects.filter(code__in=[f"a{trial}", f"b{trial}"])]
        assert len(owners) == 1


def test_one_code_created_twice_at_once_is_a_readable_refusal():
    results = _at_once(lambda: services.site_create(code="same", name="One"),
                       lambda: services.site_create(code="same", name="Two"))
    refused = [r for r in results if isinstance(r, ValidationError)]
    assert len(refused) == 1 and refused[0].error_dict["code"][0].code == "unique"
    assert Site.objects.filter(code="same").count() == 1
