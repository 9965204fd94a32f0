"""The study report: a bundle that regenerates byte-identically, an HTML file that stands alone, PI-only access."""

import io
import json
import zipfile

import pytest
from django.core.files.storage import default_storage

from studyapp.dashboards import reports
from tests.factories import bulk_cohort, locked_split_with_experiment

pytestmark = pytest.mark.django_db


@pytest.fixture
def experiment(users):
    bulk_cohort(16, annotators=[users["annotator"], users["coordinator"]], frames_per_clip=3)
    _split, experiment, _cut = locked_split_with_experiment(test_per_group=3, n_boot=20)
    return experiment


def test_the_bundle_is_byte_identical_across_generations_and_holds_the_numbers(experiment):
    names = reports.report_generate(experiment_id=experiment.pk)
    first_bundle = default_storage.open(names["bundle"]).read()
    first_html = default_storage.open(names["html"]).read().decode()
    reports.report_generate(experiment_id=experiment.pk)
    assert default_storage.open(names["bundle"]).read() == first_bundle
    second_html = default_storage.open(names["html"]).read().decode()
    # The HTML differs at most in its generation time.
    def without_time(html):
        return html.split('<p class="muted">Generated ', 1)[0] + html.split(" by CTS-Study", 1)[1]

    assert without_time(second_html) == without_time(first_html)

    archive = zipfile.ZipFile(io.BytesIO(first_bundle))
    names_in = set(archive.namelist())
    assert {"numbers.json", "manifest.json", "environment.json", "table-1.csv", "runs/squeezenet1_1.json",
            "figures/roc-hand.csv", "figures/flow.csv"} <= names_in
    numbers = json.loads(archive.read("numbers.json"))
    experiment.refresh_from_db()
    run = experiment.runs.get(model_name="efficientnet_b0")
    stored = next(r for r in numbers["results"] if r["model_name"] == "efficientnet_b0")
    assert stored["hand"]["metrics"] == run.evaluation["hand"]["metrics"]
    assert json.loads(archive.read("manifest.json"))["manifest_hash"] == experiment.split.manifest_hash


def test_the_html_stands_alone_with_plotly_inlined(experiment):
    names = reports.report_generate(experiment_id=experiment.pk)
    html = default_storage.open(names["html"]).read().decode()
    assert "<script src=" not in html and "<link " not in html  # nothing to fetch: it opens offline
    assert "Plotly" in html and html.count('data-figure="figure-') >= 8
    assert "Methods" in html and experiment.split.manifest_hash in html and "Provenance" in html


@pytest.mark.parametrize("role", ["coordinator", "annotator", "norole"])
def test_only_the_pi_generates_and_downloads_the_report(client, users, experiment, role):
    reports.report_generate(experiment_id=experiment.pk)
    client.force_login(users[role])
    base = f"/dashboards/experiments/{experiment.pk}"
    for url in (f"{base}/report.html", f"{base}/bundle.zip", f"{base}/report/status/"):
        assert client.get(url).status_code == 403
    assert client.post(f"{base}/report/").status_code == 403
    client.force_login(users["pi"])
    response = client.get(f"{base}/bundle.zip")
    assert response.status_code == 200 and b"".join(response.streaming_content)[:2] == b"PK"
    assert "attachment" in response["Content-Disposition"]


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_generates_the_report_while_the_page_shows_its_progress(client, users, experiment,
                                                                              celery_worker_process, settings):
    from studyapp.ops.models import BackgroundJob
    from tests.conftest import wait_for

    settings.MEDIA_ROOT = celery_worker_process.media_root  # the page serves what the worker wrote
    client.force_login(users["pi"])
    base = f"/dashboards/experiments/{experiment.pk}"
    client.post(f"{base}/report/")
    client.post(f"{base}/report/")  # while one is queued or running, no second job
    assert BackgroundJob.objects.filter(kind=reports.REPORT_JOB).count() == 1
    job = wait_for(lambda: BackgroundJob.objects.filter(kind=reports.REPORT_JOB, status__in=["done", "failed"]).first(),
                   timeout=120, worker=celery_worker_process)
    assert job.status == "done", job.error
    assert (job.done, job.total) == (4, 4)
    status = client.get(f"{base}/report/status/").content.decode()
    assert 'id="report-html"' in status and 'id="report-bundle"' in status and "every 2s" not in status
    assert client.get(f"{base}/report.html").status_code == 200
