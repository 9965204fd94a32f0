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


def test_the_experiment_dashboard_needs_as_many_queries_for_many_test_hands_as_for_few(client, users):
    from tests.factories import locked_split_with_experiment

    client.force_login(users["pi"])
    annotators = [users["annotator"], users["coordinator"]]
    bulk_cohort(8, annotators=annotators, frames_per_clip=3, prefix="SMALL")
    _split, few, _cut = locked_split_with_experiment(name="few", test_per_group=2, n_boot=20)
    bulk_cohort(72, annotators=annotators, frames_per_clip=3, prefix="LARGE")
    _split, many, _cut = locked_split_with_experiment(name="many", test_per_group=20, n_boot=20)
    small = _queries(client, f"/dashboards/experiments/{few.pk}/")
    large = _queries(client, f"/dashboards/experiments/{many.pk}/")
    assert 0 < large == small, f"{small} queries for 4 test hands, {large} for 40"


@pytest.mark.parametrize("role", ["coordinator", "annotator", "norole"])
def test_only_the_pi_opens_an_experiment_dashboard(client, users, role):
    from tests.factories import locked_split_with_experiment

    bulk_cohort(8, annotators=[users["annotator"]], frames_per_clip=2)
    _split, experiment, _cut = locked_split_with_experiment(test_per_group=2, n_boot=20)
    client.force_login(users[role])
    assert client.get(f"/dashboards/experiments/{experiment.pk}/").status_code == 403
    assert client.get(f"/dashboards/experiments/{experiment.pk}/?live=1").status_code == 403
    client.force_login(users["pi"])
    assert client.get(f"/dashboards/experiments/{experiment.pk}/?live=1").json()["active"] is False
    assert client.get("/dashboards/experiments/999999/").status_code == 404


def test_while_a_run_trains_the_page_polls_its_curves(client, users):
    from studyapp.experiments.models import TrainingRun
    from tests.factories import locked_split_with_experiment

    bulk_cohort(8, annotators=[users["annotator"]], frames_per_clip=2)
    _split, experiment, _cut = locked_split_with_experiment(test_per_group=2, n_boot=20)
    run = experiment.runs.get(model_name="efficientnet_b0")
    TrainingRun.objects.filter(pk=run.pk).update(status="running", epochs_done=2,
                                                 history=run.history[:2], evaluation=None)
    client.force_login(users["pi"])
    page = client.get(f"/dashboards/experiments/{experiment.pk}/").content.decode()
    assert f'data-live-url="/dashboards/experiments/{experiment.pk}/?live=1"' in page
    live = client.get(f"/dashboards/experiments/{experiment.pk}/?live=1").json()
    assert live["active"] is True
    assert {"model": "EfficientNet-B0", "status": "running", "epochs_done": 2, "epochs": 3} in live["status"]
    validation = next(t for t in live["figures"]["figure-loss"]["data"] if t["name"] == "EfficientNet-B0 validation")
    assert validation["x"] == [1, 2]
