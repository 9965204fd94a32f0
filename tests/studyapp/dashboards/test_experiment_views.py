"""The experiment page as the PI's dashboard: every figure of the results, the numbers kept, live training curves,
and a number of queries that does not grow with the test set."""

import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from studyapp.experiments.models import TrainingRun
from tests.experiment_factories import evaluated_experiment

pytestmark = pytest.mark.django_db


def _figures(page: str) -> dict[str, dict]:
    """The figure JSON of every panel on the page, by panel key."""
    import re

    out = {}
    for key, body in re.findall(r'<script id="figure-([\w-]+)" type="application/json">(.*?)</script>', page, re.S):
        out[key] = json.loads(body)
    return out


def test_the_pi_sees_every_figure_of_a_finished_experiment(client_for):
    experiment, runs = evaluated_experiment()
    page = client_for("pi").get(f"/experiments/{experiment.pk}/").content.decode()
    figures = _figures(page)
    expected = {"roc-frame", "roc-hand", "by-stage", "calibration-frame", "calibration-hand", "auc-differences",
                "training-loss", "training-metrics"}
    expected |= {f"confusion-{run.model_name}" for run in runs} | {f"hands-{run.model_name}" for run in runs}
    assert expected <= set(figures)
    # The numbers the results tables showed stay on the page.
    assert "hands (n=6)" in page and "Manual-CSA baseline" in page and "Model comparison" in page
    # The hand-level ROC carries the manual-CSA baseline on the same test hands.
    names = [trace.get("name", "") for trace in figures["roc-hand"]["data"]]
    assert any(name.startswith("Manual CSA: AUC") for name in names)
    assert 'id="wrong-hands"' in page or "Every model called every test hand right" in page


def test_queries_do_not_grow_with_the_test_set(client_for):
    pi = client_for("pi")
    small, _ = evaluated_experiment(n_hands=12, frames_per_clip=2, test_per_group=2, name="small")
    large, _ = evaluated_experiment(n_hands=60, frames_per_clip=4, test_per_group=20, name="large")
    counts = []
    for experiment in (small, large):
        pi.get(f"/experiments/{experiment.pk}/")  # session and permission caches warm
        with CaptureQueriesContext(connection) as queries:
            assert pi.get(f"/experiments/{experiment.pk}/").status_code == 200
        counts.append(len(queries))
        # The per-frame predictions are never read by the page.
        assert not any('"experiments_trainingrun"."predictions"' in q["sql"] for q in queries.captured_queries)
    assert counts[0] == counts[1], counts


def test_training_curves_are_polled_while_runs_train_and_a_finished_run_reloads_the_page(client_for):
    experiment, runs = evaluated_experiment(models=("squeezenet1_1", "mobilenetv2_100"))
    TrainingRun.objects.filter(pk=runs[1].pk).update(status="running", evaluation=None, history=runs[1].history[:2])
    pi = client_for("pi")
    page = pi.get(f"/experiments/{experiment.pk}/").content.decode()
    assert "?finished=1" in page and 'hx-trigger="every 2s"' in page
    fragment = pi.get(f"/experiments/{experiment.pk}/?finished=1", HTTP_HX_REQUEST="true")
    figures = _figures(fragment.content.decode())
    epochs = {(t["legendgroup"], t["line"]["dash"]): len(t["x"]) for t in figures["training-loss"]["data"]}
    assert epochs == {("SqueezeNet 1.1", "solid"): 6, ("SqueezeNet 1.1", "dash"): 6,
                      ("MobileNetV2", "solid"): 2, ("MobileNetV2", "dash"): 2}
    TrainingRun.objects.filter(pk=runs[1].pk).update(status="cancelled")
    reload = pi.get(f"/experiments/{experiment.pk}/?finished=1", HTTP_HX_REQUEST="true")
    assert reload["HX-Refresh"] == "true"


def test_a_run_evaluated_before_the_dashboard_gets_its_summary_once(client_for):
    experiment, runs = evaluated_experiment(models=("squeezenet1_1",))
    run = runs[0]
    stored = run.evaluation.pop("dashboard")
    TrainingRun.objects.filter(pk=run.pk).update(evaluation=run.evaluation)
    page = client_for("pi").get(f"/experiments/{experiment.pk}/").content.decode()
    run.refresh_from_db()
    summary = run.evaluation["dashboard"]
    assert summary["hands"] == stored["hands"] and summary["by_stage"] == stored["by_stage"]
    assert summary["stages_recorded"].startswith("after evaluation") and "evaluated before stages" in page


def test_training_stores_the_dashboard_summary_with_the_stages_of_evaluation_time(monkeypatch, tmp_path, settings):
    from studyapp.cohort.models import Hand
    from studyapp.experiments import services
    from studyapp.experiments import training
    from tests.studyapp.experiments.conftest import TRAIN_FAST, seed_small_study

    settings.CTS_CHECKPOINT_DIR = tmp_path / "ckpt"
    seed_small_study()
    monkeypatch.setattr(services, "queue_run", lambda run_id: None)
    split = services.split_lock(split=services.split_create(name="s", test_per_group=2))
    experiment = services.experiment_launch(split=split, models=["squeezenet1_1"], random_init=True,
                                            hyperparameters=TRAIN_FAST)
    run = experiment.runs.get()
    training.run_train(run_id=run.pk, task_id="t", worker="w")
    run.refresh_from_db()
    summary = run.evaluation["dashboard"]
    test_hands = sorted(set(run.predictions["hand_ids"]))
    assert [h["hand"] for h in summary["hands"]] == test_hands
    stages = dict(Hand.objects.filter(pk__in=test_hands).values_list("pk", "stage"))
    assert {h["hand"]: h["stage"] for h in summary["hands"]} == stages
    assert summary["stages_recorded"] == "at evaluation" and summary["calibration"]["frame"]["n"] == len(
        run.predictions["labels"])
    # Restaging later does not rewrite what the run was evaluated against.
    Hand.objects.filter(pk__in=test_hands).update(stage=None)
    run.refresh_from_db()
    assert {h["hand"]: h["stage"] for h in run.evaluation["dashboard"]["hands"]} == stages


def test_explained_runs_show_their_attribution_in_nerve_and_ring_with_the_gallerys_numbers(client_for):
    from studyapp.dashboards.experiment_selectors import explanation_summaries
    from tests.experiment_factories import explain_run

    experiment, runs = evaluated_experiment(models=("squeezenet1_1", "mobilenetv2_100"))
    pi = client_for("pi")
    page = pi.get(f"/experiments/{experiment.pk}/").content.decode()
    assert 'id="attribution"' not in page and "attribution" not in _figures(page)
    explain_run(runs[0], method="gradcam", images=False)
    explain_run(runs[1], method="occlusion", images=False)
    page = pi.get(f"/experiments/{experiment.pk}/").content.decode()
    figure = _figures(page)["attribution"]
    assert 'id="attribution"' in page and 'href="#attribution"' in page
    nerve = next(t for t in figure["data"] if t["name"] == "attribution in the nerve")
    assert nerve["y"] == ["MobileNetV2 · Occlusion", "SqueezeNet 1.1 · Grad-CAM"]
    summaries = explanation_summaries(experiment)  # the gallery's and the report's summaries
    assert nerve["x"] == [s["nerve"]["estimate"] for s in summaries]
    gallery = pi.get(f"/explanations/experiments/{experiment.pk}/").content.decode()
    assert f"{summaries[0]['nerve']['estimate']:.2f}" in gallery and "MobileNetV2" in gallery
    assert "Download CSV" in page.split('id="attribution"')[1]
    assert client_for("annotator").get(f"/experiments/{experiment.pk}/").status_code == 403
    assert client_for("coordinator").get(f"/experiments/{experiment.pk}/").status_code == 403


def test_queries_stay_flat_with_explanations(client_for):
    from tests.experiment_factories import explain_run

    pi = client_for("pi")
    counts = []
    for n_hands, per_group, name in ((12, 2, "small"), (48, 12, "large")):
        experiment, runs = evaluated_experiment(n_hands=n_hands, frames_per_clip=2, test_per_group=per_group,
                                                name=name, models=("squeezenet1_1",))
        explain_run(runs[0], images=False)
        pi.get(f"/experiments/{experiment.pk}/")
        with CaptureQueriesContext(connection) as queries:
            assert pi.get(f"/experiments/{experiment.pk}/").status_code == 200
        counts.append(len(queries))
    assert counts[0] == counts[1], counts
