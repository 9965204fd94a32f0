"""Internal vs external results on the experiment dashboard (and the rows behind them)."""

import json
import re

import pytest

from mlworker.stats import roc_auc
from studyapp.dashboards.experiment_external import (
    domain_breakdown,
    external_domain_figure,
    external_domain_rows,
    external_figure,
    external_rows,
)
from tests.experiment_factories import evaluated_experiment, evaluated_external_experiment



# --- each external site's hands alone (no database) -------------------------------------------------------


def _entries(rows):
    """Manifest-like external entries from (hand, participant, site, label, [frame probabilities])."""
    entries, labels, probabilities = [], [], []
    for hand, participant, site, label, frames in rows:
        for p in frames:
            entries.append({"hand": hand, "participant": participant, "site": site, "scanner": f"scanner {site}"})
            labels.append(label)
            probabilities.append(p)
    return entries, labels, probabilities


def test_breakdown_scores_each_sites_hands_by_their_frames_mean_with_participant_clusters():
    entries, labels, probabilities = _entries([
        (1, 10, "B", 1, [0.9, 0.7]), (2, 10, "B", 0, [0.2, 0.4]), (3, 11, "B", 1, [0.6, 0.2]),
        (4, 12, "B", 0, [0.5, 0.5]), (5, 13, "C", 1, [0.8]), (6, 14, "C", 0, [0.3]), (7, 15, "C", 0, [0.7]),
        (8, 16, "C", 1, [0.4]), (9, 17, "C", 0, [0.1]),
    ])
    breakdown = domain_breakdown(labels, probabilities, entries, domain="site", threshold=0.5)
    b, c = breakdown["groups"]
    assert breakdown["domain"] == "site" and (b["name"], c["name"]) == ("B", "C")
    # B's hands: means 0.8 (CTS), 0.3, 0.4 (CTS), 0.5; hands 1 and 2 are one participant's.
    assert (b["n"], b["n_pos"], b["n_neg"], b["n_clusters"]) == (4, 2, 2, 3)
    assert b["auc"]["estimate"] == roc_auc([1, 0, 1, 0], [0.8, 0.3, 0.4, 0.5]) == 0.75
    assert b["counts"] == {"tp": 1, "fn": 1, "tn": 1, "fp": 1}  # 0.5 is called CTS: at least the threshold
    assert (b["sensitivity"]["successes"], b["sensitivity"]["n"]) == (1, 2)
    assert (c["n"], c["n_pos"], c["n_neg"], c["n_clusters"]) == (5, 2, 3, 5)
    assert c["auc"]["estimate"] == pytest.approx(roc_auc([1, 0, 0, 1, 0], [0.8, 0.3, 0.7, 0.4, 0.1]))
    assert c["auc"]["low"] <= c["auc"]["estimate"] <= c["auc"]["high"]
    assert c["specificity"]["low"] < c["specificity"]["estimate"] == 2 / 3 < c["specificity"]["high"]
    json.dumps(breakdown, allow_nan=False)
    by_scanner = domain_breakdown(labels, probabilities, entries, domain="scanner", threshold=0.5)
    assert [g["name"] for g in by_scanner["groups"]] == ["scanner B", "scanner C"]


def test_breakdown_needs_two_external_sites_and_says_when_a_site_has_one_class():
    entries, labels, probabilities = _entries([(1, 1, "B", 1, [0.9]), (2, 2, "B", 0, [0.1])])
    assert domain_breakdown(labels, probabilities, entries, domain="site", threshold=0.5) is None
    entries, labels, probabilities = _entries([(1, 1, "B", 1, [0.9]), (2, 2, "B", 0, [0.1]),
                                               (3, 3, "C", 0, [0.6]), (4, 4, "", 1, [0.9])])
    breakdown = domain_breakdown(labels, probabilities, entries, domain="site", threshold=0.5)
    c = breakdown["groups"][1]
    assert (c["name"], c["n"], c["auc"], c["sensitivity"]) == ("C", 1, None, None)  # no CTS hand at C
    assert c["specificity"]["estimate"] == 0.0
    with pytest.raises(ValueError, match="'site' or 'scanner'"):
        domain_breakdown(labels, probabilities, entries, domain="clinic", threshold=0.5)


def test_a_hand_scanned_at_two_sites_is_one_hand_of_their_joint_group_scored_on_all_its_frames():
    entries, labels, probabilities = _entries([
        (1, 1, "B", 1, [0.9]), (1, 1, "C", 1, [0.2]),  # one hand, a clip at each site: mean 0.55, called CTS
        (2, 2, "B", 0, [0.1]), (3, 3, "B", 1, [0.8]), (4, 4, "C", 0, [0.3]), (5, 5, "C", 1, [0.7]),
    ])
    breakdown = domain_breakdown(labels, probabilities, entries, domain="site", threshold=0.5)
    groups = {g["name"]: g for g in breakdown["groups"]}
    assert list(groups) == ["B", "B + C", "C"]
    assert sum(g["n"] for g in groups.values()) == 5  # every hand once, as in the pooled result
    assert groups["B + C"]["n"] == 1 and groups["B + C"]["counts"]["tp"] == 1


def test_the_rows_name_the_external_scanners_of_a_scanner_split():
    external = {"hand": {"n": 4}, "shift": {}, "domains": ["B"], "scanners": ["Boreal UX 9", "Cirrus HD 3"]}
    models = [{"label": "M", "evaluation": {"hand": {"n": 6}, "external": external}}]
    assert external_rows(models, domain="scanner")[0]["domains"] == ["Boreal UX 9", "Cirrus HD 3"]
    assert external_rows(models, domain="site")[0]["domains"] == ["B"]


def test_domain_rows_and_figure_list_each_model_at_each_site():
    entries, labels, probabilities = _entries([(h, h, "BC"[h % 2], h // 2 % 2, [h / 10]) for h in range(1, 9)])
    breakdown = domain_breakdown(labels, probabilities, entries, domain="site", threshold=0.5)
    models = [{"label": name, "evaluation": {"external": {"by_domain": breakdown}}} for name in ("M1", "M2")]
    models.append({"label": "internal only", "evaluation": {}})
    rows = external_domain_rows(models)
    assert [(r["model"], r["name"]) for r in rows] == [("M1", "B"), ("M1", "C"), ("M2", "B"), ("M2", "C")]
    panel = external_domain_figure(rows)
    assert panel.key == "external-domains" and panel.title == "External test hands by site (95% CIs)"
    assert [t["name"] for t in panel.figure["data"]] == ["AUC", "Sensitivity", "Specificity"]
    assert panel.table.columns[:6] == ["model", "site", "hands", "CTS hands", "control hands", "participants"]
    assert len(panel.table.rows) == 4 and panel.table.rows[0][:3] == ["M1", "B", 4]


# --- the dashboard and the report -------------------------------------------------------------------------


@pytest.mark.django_db
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


@pytest.mark.django_db
def test_the_dashboard_shows_the_external_panel_only_for_external_experiments(client_for):
    experiment, runs = evaluated_external_experiment()
    page = client_for("pi").get(f"/experiments/{experiment.pk}/").content.decode()
    assert 'id="external-table"' in page and 'id="figure-external"' in page
    assert "is external by site: trained and tested internally on A;" in page
    assert re.search(r"tested externally on\s+B \(\d+ hands, vs 6 internal\)", page)
    body = re.search(r'<script id="figure-external" type="application/json">(.*?)</script>', page, re.S).group(1)
    assert len(json.loads(body)["data"][0]["y"]) == 4 * len(runs)
    assert 'id="figure-external-domains"' not in page  # one external site: the pooled result is its own
    assert runs[0].evaluation["external"]["by_domain"] is None
    internal, _ = evaluated_experiment(name="internal")
    assert 'id="external-table"' not in client_for("pi").get(f"/experiments/{internal.pk}/").content.decode()


@pytest.mark.django_db
def test_with_several_external_sites_the_dashboard_and_report_show_each_alone(client_for):
    import io
    import zipfile

    from studyapp.reports import services as report_services
    from studyapp.reports.models import StudyReport

    experiment, runs = evaluated_external_experiment(n_hands=60, sites=("A", "B", "C"))
    breakdown = runs[0].evaluation["external"]["by_domain"]
    assert breakdown["domain"] == "site" and [g["name"] for g in breakdown["groups"]] == ["B", "C"]
    assert sum(g["n"] for g in breakdown["groups"]) == runs[0].evaluation["external"]["hand"]["n"]
    page = client_for("pi").get(f"/experiments/{experiment.pk}/").content.decode()
    body = re.search(r'<script id="figure-external-domains" type="application/json">(.*?)</script>', page,
                     re.S).group(1)
    names = json.loads(body)["data"][0]["y"]
    sizes = [f"{g['name']} ({g['n']} hands)" for g in breakdown["groups"]]
    assert len(names) == 2 * len(runs) and [name.split(" · ")[1] for name in names] == sizes * len(runs)
    report = StudyReport.objects.create(experiment=experiment, total=len(report_services.STEPS))
    report = report_services.report_generate(report_id=report.pk)
    assert 'id="figure-external-domains"' in report.html.read().decode()
    rows = zipfile.ZipFile(io.BytesIO(report.bundle.read())).read("csv/external-domains.csv").decode().splitlines()
    assert rows[0].startswith("model,site,hands,CTS hands") and len(rows) == 1 + 2 * len(runs)


@pytest.mark.django_db
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
