"""The internal vs external panel of the experiment dashboard in a real browser: the side-by-side table, the
figure drawn by plotly.js with both sets' markers, its data table and CSV, no console or CSP errors."""

import os
from pathlib import Path

import pytest

from tests.browser.conftest import log_in, wait_until
from tests.experiment_factories import evaluated_external_experiment
from tests.factories import UserFactory

SHOTS = Path(os.environ.get("CTS_SCREENSHOTS", "/tmp"))

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True), pytest.mark.timeout(240)]


def test_the_pi_reads_internal_and_external_results_side_by_side(live_server, page):
    pi = UserFactory(username="pie", role="pi")
    experiment, runs = evaluated_external_experiment()
    errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" and not m.location.get(
        "url", "").endswith("/favicon.ico") else None)
    log_in(page, live_server.url, pi, f"/experiments/{experiment.pk}/")
    page.click("a[href='#external']")
    rows = page.locator("#external-table tbody tr")
    assert rows.count() == 4 * len(runs)
    texts = rows.all_inner_texts()
    for run in runs:  # each model's AUC row carries its internal and its external estimate
        internal = f"{run.evaluation['hand']['metrics']['auc']:.3f}"
        external = f"{run.evaluation['external']['hand']['metrics']['auc']:.3f}"
        assert any("AUC" in text and internal in text and external in text for text in texts), (run, texts)
    # One marker per set and row: internal and external, each with its interval.
    wait_until(page, f"document.querySelectorAll('#panel-external .plot .points path').length === {8 * len(runs)}")
    legend = page.inner_text("#panel-external .plot")
    assert "Internal test" in legend and "External test" in legend
    assert page.locator("#panel-external details.data-table tbody tr").count() == 4 * len(runs)
    assert page.locator("#panel-external a.csv").get_attribute("href").startswith("data:text/csv")
    page.locator("#external").screenshot(path=str(SHOTS / "experiment-dashboard-external.png"))
    assert not errors, errors


def test_with_several_external_sites_the_pi_reads_each_sites_hands_alone(live_server, page):
    pi = UserFactory(username="pie", role="pi")
    experiment, runs = evaluated_external_experiment(n_hands=60, sites=("A", "B", "C"))
    errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" and not m.location.get(
        "url", "").endswith("/favicon.ico") else None)
    log_in(page, live_server.url, pi, f"/experiments/{experiment.pk}/")
    page.click("a[href='#external']")
    panel = "#panel-external-domains"
    # AUC, sensitivity and specificity for each model at B and at C (a marker each, where defined).
    wait_until(page, f"document.querySelectorAll('{panel} .plot .points path').length > 0")
    markers = page.locator(f"{panel} .plot .points path").count()
    defined = sum(1 for run in runs for group in run.evaluation["external"]["by_domain"]["groups"]
                  for key in ("auc", "sensitivity", "specificity") if group[key] and group[key]["estimate"] is not None)
    assert markers == defined
    plot = page.inner_text(f"{panel} .plot")
    assert all(word in plot for word in ("AUC", "Sensitivity", "Specificity"))
    sites = page.locator(f"{panel} details.data-table tbody tr td:nth-child(2)").all_text_contents()
    assert sorted(site.strip() for site in sites) == ["B"] * len(runs) + ["C"] * len(runs)
    page.locator("#external").screenshot(path=str(SHOTS / "experiment-dashboard-external-sites.png"))
    assert not errors, errors
