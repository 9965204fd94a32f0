"""The study report: generated on request with progress on its row, a bundle identical byte for byte when made
twice from the same data, an HTML file that differs only in its generation time, downloads for the PI only."""

import io
import json
import re
import zipfile

import pytest

from studyapp.reports import services
from studyapp.reports.models import StudyReport
from tests.experiment_factories import evaluated_experiment

pytestmark = pytest.mark.django_db


@pytest.fixture
def experiment():
    return evaluated_experiment(n_hands=16, frames_per_clip=3, test_per_group=3)[0]


def _generate(experiment, user=None) -> StudyReport:
    report = StudyReport.objects.create(experiment=experiment, requested_by=user, total=len(services.STEPS))
    return services.report_generate(report_id=report.pk)


def test_two_generations_give_the_same_bundle_and_html_but_for_the_time(experiment):
    first, second = _generate(experiment), _generate(experiment)
    a, b = first.bundle.read(), second.bundle.read()
    assert a == b and first.bundle_sha256 == second.bundle_sha256
    names = zipfile.ZipFile(io.BytesIO(a)).namelist()
    assert names == sorted(names)
    assert {"numbers.json", "manifest.json", "environment.json", "README.txt", "csv/results.csv", "csv/table-1.csv",
            "csv/roc-frame.csv", "csv/roc-hand.csv", "csv/by-stage.csv", "runs/efficientnet_b0.json"} <= set(names)
    assert all(info.date_time == (1980, 1, 1, 0, 0, 0) for info in zipfile.ZipFile(io.BytesIO(a)).infolist())
    html_a, html_b = first.html.read().decode(), second.html.read().decode()
    strip = re.compile(r'<span id="generated-at">[^<]*</span>')
    assert html_a != "" and strip.sub("", html_a) == strip.sub("", html_b)


def test_the_bundle_holds_the_numbers_the_page_shows(experiment):
    report = _generate(experiment)
    bundle = zipfile.ZipFile(io.BytesIO(report.bundle.read()))
    numbers = json.loads(bundle.read("numbers.json"))
    run = experiment.runs.get(model_name="squeezenet1_1")
    stored = next(r for r in numbers["runs"] if r["model_name"] == "squeezenet1_1")
    assert stored["evaluation"]["hand"]["metrics"] == run.evaluation["hand"]["metrics"]
    assert stored["weights_sha256"] == run.weights_sha256
    assert json.loads(bundle.read("manifest.json")) == json.loads(json.dumps(experiment.split.manifest))
    assert numbers["split"]["manifest_sha256"] == experiment.split.manifest_hash
    html = report.html.read().decode()
    # Offline: the plotly package's plotly.js inside the file (the browser test opens it with no network).
    from plotly.offline import get_plotlyjs

    assert get_plotlyjs() in html
    for text in ("Methods", "Table 1", "Participant flow", "Provenance", experiment.split.manifest_hash,
                 run.weights_sha256, "Errors by EPS stage", "Manual-CSA baseline", "frames (n="):
        assert text in html, text


def test_generation_is_queued_with_progress_and_served_only_to_the_pi(client_for, experiment, monkeypatch,
                                                                       django_capture_on_commit_callbacks):
    from studyapp.reports import tasks

    queued = []
    monkeypatch.setattr(tasks.generate_report, "delay", queued.append)
    assert client_for("coordinator").post(f"/reports/experiments/{experiment.pk}/generate/").status_code == 403
    pi = client_for("pi")
    with django_capture_on_commit_callbacks(execute=True):
        pi.post(f"/reports/experiments/{experiment.pk}/generate/")
    report = StudyReport.objects.get()
    assert queued == [report.pk] and report.status == "queued"
    box = pi.get(f"/reports/experiments/{experiment.pk}/status/").content.decode()
    assert 'hx-trigger="every 2s"' in box and "<progress" in box
    again = pi.post(f"/reports/experiments/{experiment.pk}/generate/", follow=True).content.decode()
    assert "already being generated" in again and StudyReport.objects.count() == 1
    tasks.generate_report(report.pk)
    report.refresh_from_db()
    assert report.status == "done" and report.done == report.total
    page = pi.get(f"/experiments/{experiment.pk}/").content.decode()
    assert f"/reports/{report.pk}/html/" in page and f"/reports/{report.pk}/bundle/" in page
    response = pi.get(f"/reports/{report.pk}/bundle/")
    assert response.status_code == 200 and b"".join(response.streaming_content) == report.bundle.open("rb").read()
    assert 'filename="study-models-report' in response["Content-Disposition"]
    assert pi.get(f"/reports/{report.pk}/nothing/").status_code == 404
    for role in ("coordinator", "annotator", "norole"):
        assert client_for(role).get(f"/reports/{report.pk}/html/").status_code == 403


def test_a_report_needs_finished_runs(experiment):
    from django.core.exceptions import ValidationError

    experiment.runs.filter(model_name="squeezenet1_1").update(status="running")
    with pytest.raises(ValidationError) as error:
        services.report_queue(experiment=experiment)
    assert error.value.code == "runs_unfinished" and not StudyReport.objects.exists()


def test_a_report_whose_worker_vanished_does_not_block_a_new_one(experiment, monkeypatch):
    from datetime import timedelta

    from django.core.exceptions import ValidationError
    from django.utils import timezone

    from studyapp.reports import tasks

    monkeypatch.setattr(tasks.generate_report, "delay", lambda report_id: None)
    lost = StudyReport.objects.create(experiment=experiment, status="running", lease_token="t",
                                      lease_expires_at=timezone.now() + timedelta(seconds=30))
    with pytest.raises(ValidationError, match="already being generated"):  # its worker still renews the lease
        services.report_queue(experiment=experiment)
    StudyReport.objects.filter(pk=lost.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    fresh = services.report_queue(experiment=experiment)
    lost.refresh_from_db()
    assert lost.status == "failed" and "generate it again" in lost.error and fresh.status == "queued"


def test_explained_runs_get_their_attribution_in_the_report_and_the_bundle(experiment):
    from studyapp.explanations.models import ExplanationJob, FrameExplanation

    run = experiment.runs.get(model_name="squeezenet1_1")
    job = ExplanationJob.objects.create(run=run, method="gradcam", status="done")
    test = [e for e in experiment.split.manifest if e["subset"] == "test"]
    for i, entry in enumerate(test):
        nerve = 0.5 if entry["label"] else 0.3
        FrameExplanation.objects.create(
            job=job, frame_id=entry["frame"], hand_id=entry["hand"], box=entry["box"], mm_per_px=0.1,
            attribution=f"x/{i}.npz", crop=f"x/{i}.png", heatmap=f"x/{i}h.png", overlay=f"x/{i}o.png",
            probability=0.5, label=entry["label"], frame_outcome="tp", hand_probability=0.5, hand_outcome="tp",
            outline_source="traced",
            shares={"nerve": nerve, "ring": 0.2, "outside": 0.8 - nerve, "nerve_area": 0.1, "ring_area": 0.15,
                    "outside_area": 0.75, "pointing": "nerve", "positive_mass": 1.0, "reason": None})
    first, second = _generate(experiment), _generate(experiment)
    assert first.bundle.read() == second.bundle.read()
    html = first.html.read().decode()
    assert 'id="explanations"' in html and 'id="figure-attribution"' in html
    numbers = json.loads(zipfile.ZipFile(io.BytesIO(first.bundle.open("rb").read())).read("numbers.json"))
    [summary] = numbers["explanations"]
    assert (summary["model"], summary["method"]) == ("squeezenet1_1", "gradcam")
    assert summary["nerve"]["estimate"] == pytest.approx(0.4)
    assert summary["nerve_area"]["estimate"] == pytest.approx(0.1)
    assert "csv/attribution.csv" in zipfile.ZipFile(io.BytesIO(first.bundle.open("rb").read())).namelist()


def test_the_report_shows_representative_heatmaps_inline_and_stays_byte_identical(experiment):
    import base64

    from studyapp.explanations.models import FrameExplanation
    from tests.experiment_factories import explain_run

    for run in experiment.runs.order_by("pk")[:2]:
        explain_run(run, method="gradcam")
    explain_run(experiment.runs.order_by("pk").first(), method="occlusion")
    first, second = _generate(experiment), _generate(experiment)
    assert first.bundle.read() == second.bundle.read()
    html = first.html.read().decode()
    strip = re.compile(r'<span id="generated-at">[^<]*</span>')
    assert strip.sub("", html) == strip.sub("", second.html.read().decode())
    assert 'id="heatmaps"' in html and html.count('class="heatmap-group"') == 3
    assert "SqueezeNet 1.1 · Grad-CAM" in html and "SqueezeNet 1.1 · Occlusion" in html
    # Each image is inside the file: the overlay's own bytes as a data: URI, none fetched from the server.
    uris = re.findall(r'<img src="data:image/png;base64,([^"]+)"', html)
    assert uris and "/explanations/files/" not in html
    outcomes = set(FrameExplanation.objects.filter(job__run__model_name="squeezenet1_1", job__method="gradcam",
                                                   job__run__experiment=experiment).values_list("hand_outcome",
                                                                                                 flat=True))
    groups = re.findall(r'class="heatmap-group" data-model="squeezenet1_1" data-method="gradcam">(.*?)</div>\n  </div>',
                        html, re.S)
    assert groups and groups[0].count('<figure class="heatmap">') == len(outcomes)
    table = zipfile.ZipFile(io.BytesIO(first.bundle.open("rb").read())).read("csv/heatmap-examples.csv").decode()
    shown = [int(line.rsplit(",", 1)[1]) for line in table.strip().splitlines()[1:]]
    assert len(shown) == len(uris)
    row = FrameExplanation.objects.get(pk=shown[0])
    assert base64.b64decode(uris[0]) == row.overlay.open("rb").read()
