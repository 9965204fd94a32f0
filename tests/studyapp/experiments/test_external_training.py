"""A tiny training run on a two-site cohort: internal and external evaluations, and per-site normalisation."""

import pytest
from django.core.exceptions import ValidationError

from studyapp.experiments import services, training
from tests.studyapp.experiments.conftest import TRAIN_FAST

pytestmark = pytest.mark.django_db


@pytest.fixture
def no_queue(monkeypatch):
    monkeypatch.setattr(services, "queue_run", lambda run_id: None)


@pytest.fixture
def external_split(two_site_study):
    return services.split_lock(split=services.split_create(
        name="ext", seed=1, test_per_group=2, train_per_group=None, kind="external", domain="site",
        train_domains=["A"]))


def train(split, **hyperparameters):
    experiment = services.experiment_launch(split=split, models=["squeezenet1_1"], random_init=True,
                                            hyperparameters={**TRAIN_FAST, "epochs": 1, **hyperparameters})
    run = experiment.runs.get()
    assert training.run_train(run_id=run.pk, task_id="t", worker="w") == "done", run.error
    run.refresh_from_db()
    return run


def test_a_run_on_an_external_split_is_evaluated_internally_and_externally(external_split, no_queue, tmp_path,
                                                                         settings):
    settings.CTS_CHECKPOINT_DIR = tmp_path / "ckpt"
    run = train(external_split)
    evaluation = run.evaluation
    internal_hands = {e["hand"] for e in external_split.manifest if e["subset"] == "test"}
    external_hands = {e["hand"] for e in external_split.manifest if e["subset"] == "external"}
    assert set(evaluation["hand"]["hand_ids"]) == internal_hands
    external = evaluation["external"]
    assert set(external["hand"]["hand_ids"]) == external_hands and external["domains"] == ["B"]
    assert external["threshold"] == evaluation["threshold"] == 0.5  # chosen as today, never on external hands
    assert set(external["hand"]["ci"]["resampling_hands"]) >= {"auc", "recall", "specificity", "accuracy"}
    assert external["frame"]["n"] == 6 * len(external_hands)
    shift = external["shift"]
    assert shift["n_internal"] == len(internal_hands) and shift["n_external"] == len(external_hands)
    assert shift["auc"]["difference"] == pytest.approx(evaluation["hand"]["metrics"]["auc"]
                                                       - external["hand"]["metrics"]["auc"])
    assert run.predictions["hand_ids"] and set(run.predictions["hand_ids"]) == internal_hands
    assert "normalisation" not in evaluation and run.config["site_normalisation"] == "none"


def test_per_site_normalisation_is_recorded_and_fitted_on_training_crops_only(external_split, no_queue, tmp_path,
                                                                            settings):
    settings.CTS_CHECKPOINT_DIR = tmp_path / "ckpt"
    run = train(external_split, site_normalisation="per_site_zscore")
    assert run.config["site_normalisation"] == "per_site_zscore"
    record = run.evaluation["normalisation"]
    assert record["method"] == "per_site_zscore"
    assert record["sites"]["A"]["from"] == "fitting crops" and record["sites"]["A"]["n"] == record["reference"]["n"]
    assert record["sites"]["B"]["from"] == "its own crops (no labels)"
    assert record["sites"]["B"]["n"] == 6 * len({e["hand"] for e in external_split.manifest
                                                 if e["subset"] == "external"})
    assert "external" in run.evaluation
    # A new prediction of an external hand's clip normalises it as training did: the stored probability again.
    from rest_framework.test import APIClient

    from studyapp.clips.models import Clip
    from tests.factories import UserFactory
    from tests.jobs import run_job

    hands = run.evaluation["external"]["hand"]
    api = APIClient()
    api.force_authenticate(UserFactory(username="pi-ext", role="pi"))
    job = run_job(api, api.post(f"/api/models/{run.pk}/predict/",
                                {"clip": Clip.objects.get(hand_id=hands["hand_ids"][0]).pk}, format="json"))
    assert job["status"] == "done", job["error"]
    assert job["result"]["hand_probability"] == pytest.approx(hands["probabilities"][0], abs=1e-5)


def test_per_site_normalisation_needs_a_split_that_records_sites(two_site_study, no_queue):
    split = services.split_lock(split=services.split_create(name="int", test_per_group=2))
    with pytest.raises(ValidationError) as caught:
        services.experiment_launch(split=split, models=["squeezenet1_1"], random_init=True,
                                   hyperparameters={**TRAIN_FAST, "site_normalisation": "per_site_zscore"})
    assert [e.code for e in caught.value.error_dict["site_normalisation"]] == ["normalisation_needs_sites"]


def test_normalised_crops_of_the_external_site_take_the_fitting_crops_statistics(external_split, tmp_path,
                                                                               settings, monkeypatch):
    """The hook where crops are prepared: the unseen site's crops are moved onto the reference mean and SD."""
    settings.CTS_CHECKPOINT_DIR = tmp_path / "ckpt"
    manifest = external_split.manifest
    fit_set, _, _ = services.fit_val_test(manifest, seed=0)
    external = [e for e in manifest if e["subset"] == "external"]
    # Site B's scanner: brighter and flatter than A's (the phantom's two sites share one scanner profile).
    at_b = [i for i, e in enumerate(manifest) if e["site"] == "B"]
    decoded = training.cached_crop_images

    def site_b_brighter(*args):
        images = decoded(*args).clone()
        images[at_b] = (images[at_b].float() * 0.4 + 120).round().to(images.dtype)
        return images

    monkeypatch.setattr(training, "cached_crop_images", site_b_brighter)
    plain, none = training._crops(manifest, external_split.manifest_hash, size=32, download_dir=tmp_path / "f")
    assert none == {"method": "none"}
    crops_of, record = training._crops(manifest, external_split.manifest_hash, size=32, download_dir=tmp_path / "f",
                                       site_normalisation="per_site_zscore", fit_set=fit_set)
    before = plain(external).images.double()
    after = crops_of(external).images.double()
    reference = record["reference"]
    assert reference["n"] == len(fit_set)
    assert before.mean().item() == pytest.approx(record["sites"]["B"]["mean"])
    assert abs(before.mean().item() - reference["mean"]) > 20 and before.std().item() < 0.6 * reference["sd"]
    assert after.mean().item() == pytest.approx(reference["mean"], abs=1.0)
    assert after.std(unbiased=False).item() == pytest.approx(reference["sd"], rel=0.05)
    assert crops_of(fit_set).images.double().mean().item() == pytest.approx(reference["mean"], abs=1.0)
    assert plain(fit_set).images.dtype == crops_of(fit_set).images.dtype


def test_explanations_of_a_normalised_run_explain_the_crops_it_was_trained_and_tested_on(
        external_split, no_queue, tmp_path, settings, monkeypatch):
    import numpy as np

    from mlworker.ml import load_crops
    from mlworker.ml.normalise import normalise_sites_like
    from studyapp.explanations import explaining
    from studyapp.explanations import services as explanation_services

    settings.CTS_CHECKPOINT_DIR = tmp_path / "ckpt"
    run = train(external_split, site_normalisation="per_site_zscore")
    monkeypatch.setattr(explanation_services, "queue_job", lambda job_id: None)
    job = explanation_services.jobs_queue(run=run, methods=["occlusion"])[0]
    context = explaining._Context(job, tmp_path / "cache")
    # The training site's crops define the reference (their table is the identity); another site's are moved.
    entries = context.test_set[:2] + [e for e in external_split.manifest if e["subset"] == "external"][:2]
    raw = load_crops(explaining._samples(entries, tmp_path / "cache"), size=context.size).images.numpy()
    seen = context.crops(entries).numpy()
    expected = normalise_sites_like(raw, run.evaluation["normalisation"], [e["site"] for e in entries])
    assert np.array_equal(seen, expected) and not np.array_equal(seen, raw)
