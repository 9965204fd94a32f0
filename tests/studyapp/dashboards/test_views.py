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


def test_on_the_demo_study_the_dashboards_show_its_cohort(client_for):
    from mlworker.phantom import PhantomConfig
    from studyapp.cohort.selectors import cohort_flow
    from studyapp.demo.services import demo_seed
    from studyapp.protocol.models import StudySettings

    StudySettings.objects.update_or_create(id=1, defaults={"frames_per_clip": 4})
    demo_seed(n_hands=8, config=PhantomConfig(width=160, height=120, n_frames=4, pixel_spacing_mm=0.25),
              second_rater_every=2, awaiting_annotation=2)
    response = client_for("coordinator").get("/dashboards/cohort/")
    flow = cohort_flow()
    rows = {(step, what): n for step, what, n in response.context["flow"].table.rows}
    assert rows[("screened", "hands")] == flow["screened"]["hands"] >= 10
    assert rows[("group", "cts")] == flow["included"]["by_group"]["cts"] > 0
    table = response.context["table_one"]
    assert table["n"] == {g: flow["included"]["by_group"][g] for g in ("control", "cts")}
    # Every rater's work side by side is not for raters who work blind.
    assert client_for("annotator").get("/dashboards/annotation/").status_code == 403
    annotation = client_for("coordinator").get("/dashboards/annotation/")
    assert annotation.status_code == 200 and len(annotation.context["waiting"]) >= 2
    assert [p.key for p in annotation.context["agreement_panels"]][:1] == ["iou-clip"]
