"""Internal vs external results on the experiment dashboard (and the rows behind them)."""

import json
import re

import pytest

from studyapp.dashboards.experiment_external import external_figure, external_rows
from tests.experiment_factories import evaluated_experiment, evaluated_external_experiment

pytestmark = pytest.mark.django_db


def test_rows_put_internal_and_external_side_by_side_with_the_shift():
    experiment, runs = evaluated_external_experiment()
    rows = external_rows([{"label": run.model_name, "evaluation": run.evaluation} for run in runs])
    assert [(r["model"], r["metric"]) for r in rows[:4]] == [
        (runs[0].model_name, m) for m in ("AUC", "sensitivity", "specificity", "accuracy")]
    auc = rows[0]
    hand, external = runs[0].evaluation["hand"], runs[0].evaluation["external"]["hand"]
    assert auc["internal"]["estimate"] == hand["metrics"]["auc"]
    assert auc["external"]["estimate"] == external["metrics"]["auc"]
    assert auc["internal"]["low"] == hand["ci"]["resampling_hands"]["auc"]["low"]
    assert auc["difference"]["estimate"] == pytest.approx(auc["internal"]["estimate"] - auc["external"]["estimate"])
    assert auc["difference"]["low"] <= auc["difference"]["estimate"] <= auc["difference"]["high"]
    assert auc["domains"] == ["B"] and auc["n_internal"] == 6 and auc["n_external"] == external["n"]
    from studyapp.dashboards.selectors import latest_locked_split

    counts = latest_locked_split()["groups"]
    assert counts["control"]["external"] + counts["cts"]["external"] == auc["n_external"]
    panel = external_figure(rows)
    assert [t["name"] for t in panel.figure["data"]] == ["Internal test", "External test"]
    assert len(panel.table.rows) == len(rows) == 4 * len(runs)


def test_the_dashboard_shows_the_external_panel_only_for_external_experiments(client_for):
    experiment, runs = evaluated_external_experiment()
    page = client_for("pi").get(f"/experiments/{experiment.pk}/").content.decode()
    assert 'id="external-table"' in page and 'id="figure-external"' in page
    assert "is external by site: trained and tested internally on A;" in page
    assert re.search(r"tested externally on\s+B \(\d+ hands, vs 6 internal\)", page)
    body = re.search(r'<script id="figure-external" type="application/json">(.*?)</script>', page, re.S).group(1)
    assert len(json.loads(body)["data"][0]["y"]) == 4 * len(runs)
    internal, _ = evaluated_experiment(name="internal")
    assert 'id="external-table"' not in client_for("pi").get(f"/experiments/{internal.pk}/").content.decode()


def test_the_study_report_shows_the_external_results_and_bundles_their_csv():
    import io
    import zipfile

    from studyapp.reports import services as report_services
    from studyapp.reports.models import StudyReport

    experiment, runs = evaluated_external_experiment()
    report = StudyReport.objects.create(experiment=experiment, total=len(report_services.STEPS))
    report = report_services.report_generate(report_id=report.pk)
    html = report.html.read().decode()
    assert 'id="external-table"' in html and "Internal vs external validation" in html
    external = [e for e in experiment.split.manifest if e["subset"] == "external"]
    hands = len({e["hand"] for e in external})
    assert (f"The split was external by site: training and internal testing used only hands scanned at A; every "
            f"eligible hand of the other sites formed an external test set ({hands} hands") in html
    assert f"CTS; {len(external)} crops), evaluated at the threshold of the internal evaluation" in html
    bundle = zipfile.ZipFile(io.BytesIO(report.bundle.read()))
    rows = bundle.read("csv/external.csv").decode().strip().splitlines()
    assert rows[0].startswith("model,metric,internal") and len(rows) == 1 + 4 * len(runs)
