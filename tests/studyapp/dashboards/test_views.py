"""The dashboard pages: what each role sees, and a number of queries that stays flat as the cohort grows."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.factories import bulk_cohort

pytestmark = pytest.mark.django_db

PAGES = ["/dashboards/cohort/", "/dashboards/annotation/"]


def _queries(client, url) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200
    return len(captured)


@pytest.mark.parametrize("url", PAGES)
def test_queries_stay_flat_when_the_cohort_grows_tenfold(client, users, url):
    client.force_login(users["pi"])
    annotators = [users["annotator"], users["coordinator"]]
    bulk_cohort(4, annotators=annotators, frames_per_clip=3, prefix="SMALL")
    small = _queries(client, url)
    bulk_cohort(36, annotators=annotators, frames_per_clip=3, prefix="LARGE")
    large = _queries(client, url)
    assert 0 < large == small, f"{small} queries for 4 hands, {large} for 40"
