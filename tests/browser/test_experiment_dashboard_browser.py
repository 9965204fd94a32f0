"""The experiment dashboard and the study report in a real browser: every figure drawn by plotly.js (the page's
from the project's static files, the report's from inside the file, opened from file:// with no network), data
tables and CSVs beside them, no console errors; a click on a hand opens its page."""

import os
from pathlib import Path

import pytest

from tests.browser.conftest import log_in, wait_until
from tests.experiment_factories import evaluated_experiment, explain_run
from tests.factories import UserFactory

SHOTS = Path(os.environ.get("CTS_SCREENSHOTS", "/tmp"))

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True), pytest.mark.timeout(240)]


def _console_errors(page) -> list[str]:
    errors = []

    def record(message):
        if message.type == "error" and not message.location.get("url", "").endswith("/favicon.ico"):
            errors.append(message.text)

    page.on("console", record)
    return errors


def _all_figures_drawn(page) -> int:
    """Every figure panel has plotly's SVG, a data table with rows and a CSV link; returns how many."""
    panels = page.locator("figure.panel")
    n = panels.count()
    for i in range(n):
        panel = panels.nth(i)
        panel.locator(".plot .main-svg").first.wait_for(state="attached")
        assert panel.locator("details.data-table table tbody tr").count() >= 1, panel.get_attribute("id")
        assert panel.locator("a.csv").get_attribute("href").startswith("data:text/csv")
    return n


def test_the_pi_reads_the_dashboard_then_downloads_and_opens_the_report_offline(live_server, page, tmp_path,
                                                                              monkeypatch):
    from studyapp.reports import services as report_services
    from studyapp.reports.tasks import generate_report

    # The report is generated below as the worker would; a session worker of the suite must not take it.
    monkeypatch.setattr(report_services, "_queue", lambda report_id: None)
    pi = UserFactory(username="pia", role="pi")
    experiment, runs = evaluated_experiment(n_hands=30, frames_per_clip=6, test_per_group=6)
    explain_run(runs[0], method="gradcam")
    explain_run(runs[0], method="occlusion")
    explain_run(runs[1], method="gradcam")
    errors = _console_errors(page)
    base = live_server.url
    url = f"/experiments/{experiment.pk}/"
    log_in(page, base, pi, url)
    # ROC ×2, confusion ×3, hands ×3, stage, calibration ×2, AUC differences, attribution, training ×2
    assert _all_figures_drawn(page) == 15
    attribution = page.inner_text("#panel-attribution .plot")
    assert "SqueezeNet 1.1 · Grad-CAM" in attribution and "attribution in the nerve" in attribution
    assert page.locator("#panel-attribution details.data-table tbody tr").count() == 3
    page.locator("#attribution").screenshot(path=str(SHOTS / "experiment-dashboard-attribution.png"))
    assert page.locator("#test-results + p + table tbody tr").count() == 6
    legend = page.inner_text("#panel-roc-hand .plot")
    assert "Manual CSA: AUC" in legend and "95% CI" in legend
    assert "Obuchowski" in page.inner_text("#panel-roc-frame .plot")
    page.screenshot(path=str(SHOTS / "experiment-dashboard-pi.png"), full_page=True)

    # A click on a hand of the per-hand view opens that hand's page (these runs have no weights to predict with).
    first = page.locator("#panel-hands-squeezenet1_1 .plot .points path").first
    first.click(force=True)
    page.wait_for_url(f"{base}/cohort/hands/**")
    page.go_back()

    page.click("#report-generate")
    page.wait_for_url(f"{base}{url}")
    assert "Generating the study report" in page.inner_text("main")
    from studyapp.reports.models import StudyReport

    assert generate_report(StudyReport.objects.get().pk) == "done"  # what the worker runs
    page.reload()
    with page.expect_download() as download:
        page.click("#report-html")
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    assert saved.name.endswith(".html")
    page.screenshot(path=str(SHOTS / "experiment-report-box-pi.png"))

    # The report, offline: any request leaving file:// is refused, and the figures still draw.
    report = page.context.new_page()
    report_errors = _console_errors(report)
    refused = []
    report.route("**/*", lambda route: route.continue_() if route.request.url.startswith("file://")
                 else (refused.append(route.request.url), route.abort()))
    report.goto(saved.as_uri())
    drawn = _all_figures_drawn(report)
    assert drawn >= 13 and report.locator("#table-one tbody tr").count() > 5
    # The heatmap panel: three model × method groups, every image decoded from inside the file.
    assert report.locator("#explanations .heatmap-group").count() == 3
    images = report.locator("#explanations figure.heatmap img")
    assert images.count() >= 3
    assert report.evaluate("() => [...document.querySelectorAll('figure.heatmap img')]"
                           ".every(img => img.complete && img.naturalWidth > 0)")
    report.locator("#explanations").screenshot(path=str(SHOTS / "study-report-heatmaps.png"))
    assert "Methods" in report.inner_text("#methods")
    assert experiment.split.manifest_hash in report.inner_text("#provenance")
    report.screenshot(path=str(SHOTS / "study-report.png"), full_page=True)
    report.emulate_media(media="print")
    report.screenshot(path=str(SHOTS / "study-report-print.png"), full_page=True)
    assert not refused, refused
    assert not report_errors, report_errors

    # The explanation gallery names the models by their labels.
    page.goto(f"{base}/explanations/experiments/{experiment.pk}/")
    assert "SqueezeNet 1.1" in page.inner_text("#summary") and "squeezenet1_1" not in page.inner_text("main")
    page.screenshot(path=str(SHOTS / "explanation-gallery-labels.png"))
    assert not errors, errors


def test_training_curves_grow_while_a_run_trains_and_its_results_appear_when_it_ends(live_server, page):
    from studyapp.experiments.models import TrainingRun

    pi = UserFactory(username="pia", role="pi")
    experiment, runs = evaluated_experiment(n_hands=16, frames_per_clip=3, test_per_group=3,
                                            models=("squeezenet1_1", "mobilenetv2_100"))
    running = next(run for run in runs if run.model_name == "mobilenetv2_100")
    history, evaluation = running.history, running.evaluation
    TrainingRun.objects.filter(pk=running.pk).update(status="running", history=history[:2], epochs_done=2,
                                                     evaluation=None)
    errors = _console_errors(page)
    base = live_server.url
    url = f"/experiments/{experiment.pk}/"
    log_in(page, base, pi, url)
    points = "() => ((document.getElementById('plot-training-loss') || {}).data || []).map(t => t.x.length)"
    page.locator("#plot-training-loss .main-svg").first.wait_for(state="attached")
    assert sorted(page.evaluate(points)) == [2, 2, 6, 6]
    assert page.locator("#panel-confusion-mobilenetv2_100").count() == 0  # not evaluated yet
    assert page.locator("#report-generate").count() == 0 and "once every run has finished" in page.inner_text("#report")
    TrainingRun.objects.filter(pk=running.pk).update(history=history[:4], epochs_done=4)
    wait_until(page, f"({points})().includes(4)", timeout=10)  # the 2 s poll redrew the curves
    page.screenshot(path=str(SHOTS / "experiment-dashboard-training.png"))
    TrainingRun.objects.filter(pk=running.pk).update(status="done", history=history, epochs_done=6,
                                                     evaluation=evaluation)
    page.locator("#panel-confusion-mobilenetv2_100 .main-svg").first.wait_for(state="attached", timeout=10_000)
    assert page.locator("#report-generate").count() == 1
    assert not errors, errors
