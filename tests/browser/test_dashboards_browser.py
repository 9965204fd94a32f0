"""The dashboards in a real browser: every figure drawn by plotly.js from the project's static files, its data
table and CSV beside it, no script errors; a blinded annotator gets no dashboard."""

import os
from pathlib import Path

import pytest

from tests.factories import UserFactory, bulk_cohort, locked_split_with_experiment
from tests.browser.conftest import log_in

SHOTS = Path(os.environ.get("CTS_SCREENSHOTS", "/tmp"))

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True), pytest.mark.timeout(180)]


@pytest.fixture
def study():
    people = {"pi": UserFactory(username="pia", role="pi"), "annotator": UserFactory(username="ann", role="annotator"),
              "second": UserFactory(username="bob", role="annotator")}
    bulk_cohort(24, annotators=[people["annotator"], people["second"]], frames_per_clip=4)
    locked_split_with_experiment(test_per_group=4)
    return people


def _console_errors(page) -> list[str]:
    errors = []
    def record(message):
        # The browser asks for /favicon.ico on its own; the project serves none.
        if message.type == "error" and not message.location.get("url", "").endswith("/favicon.ico"):
            errors.append(message.text)

    page.on("console", record)
    return errors


def _all_figures_drawn(page, expected: int) -> None:
    plots = page.locator(".panel .plot")
    assert plots.count() == expected
    for i in range(expected):
        plots.nth(i).locator(".main-svg").first.wait_for(state="attached")
    panels = page.locator("figure.panel")
    for i in range(expected):
        panel = panels.nth(i)
        assert panel.locator("details.data-table table tbody tr").count() >= 1
        href = panel.locator("a.csv").get_attribute("href")
        assert href.startswith("data:text/csv") and panel.locator("a.csv").get_attribute("download").endswith(".csv")


def test_the_pi_sees_every_figure_of_the_cohort_and_annotation_dashboards(live_server, page, study):
    errors = _console_errors(page)
    base = live_server.url
    log_in(page, base, study["pi"], "/dashboards/cohort/")
    _all_figures_drawn(page, 5)  # flow, age bands, CSA by group and by stage, enrollment
    assert page.locator("table.table-one tbody tr").count() > 10
    assert "Age imbalance" in page.inner_text("#table-one")  # bulk controls are 22-45, CTS 45-80
    flow = page.inner_text("#panel-flow .plot")
    assert "main v1" in flow and "Analysed" in flow
    # The training Youden cut-off is drawn on both CSA plots.
    assert "training Youden cut-off" in page.inner_text("#panel-csa-group .plot")
    page.screenshot(path=str(SHOTS / "dashboard-cohort-pi.png"), full_page=True)

    page.click("#nav-dashboards summary")
    page.click("#nav-dashboards a[href='/dashboards/annotation/']")
    page.wait_for_url(f"{base}/dashboards/annotation/")
    _all_figures_drawn(page, 5)  # per clip, per annotator, IoU per clip, ICC, Bland–Altman
    page.screenshot(path=str(SHOTS / "dashboard-annotation-pi.png"), full_page=True)

    page.goto(f"{base}/clips/agreement/")
    _all_figures_drawn(page, 1)  # Bland–Altman, in plotly now
    assert page.locator("#ba-bias").count() == 1 and page.locator("#icc-value").count() == 1
    page.screenshot(path=str(SHOTS / "agreement-pi.png"), full_page=True)
    assert not errors, errors


def test_a_blinded_annotator_gets_no_dashboard(live_server, page, study):
    errors = _console_errors(page)
    base = live_server.url
    log_in(page, base, study["annotator"], "/clips/worklist/")
    assert page.locator("#nav-dashboards").count() == 0
    # The annotation dashboard shows every rater's work; the others show demographics or results.
    for url in ("/dashboards/annotation/", "/dashboards/cohort/"):
        assert page.goto(f"{base}{url}").status == 403
    assert not [e for e in errors if "403" not in e], errors
