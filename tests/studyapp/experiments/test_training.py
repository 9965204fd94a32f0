"""Training runs executed in-process (the worker's code path without the broker)."""

import pytest
import torch

from studyapp.experiments import services
from studyapp.experiments import training
from studyapp.experiments.models import TrainingRun
from tests.studyapp.experiments.conftest import TRAIN_FAST

pytestmark = pytest.mark.django_db


@pytest.fixture
def locked_split(small_study):
    return services.split_lock(split=services.split_create(name="s", seed=1, test_per_group=3))


@pytest.fixture
def no_queue(monkeypatch):
    monkeypatch.setattr(services, "queue_run", lambda run_id: None)


def launch(split, models, **kwargs):
    return services.experiment_launch(split=split, models=models, hyperparameters=TRAIN_FAST, **kwargs)


def test_a_run_trains_evaluates_and_registers_the_model(locked_split, no_queue, tmp_path, settings):
    settings.CTS_CHECKPOINT_DIR = tmp_path / "ckpt"
    experiment = launch(locked_split, ["squeezenet1_1"], random_init=True)
    run = experiment.runs.get()
    assert training.run_train(run_id=run.pk, task_id="t1", worker="w1") == "done"
    run.refresh_from_db()
    assert run.status == "done" and run.epochs_done == 2 and [h["epoch"] for h in run.history] == [1, 2]
    assert len(run.weights_sha256) == 64 and run.weights.name.startswith("models/")
    assert run.manifest_hash == locked_split.manifest_hash and run.random_init
    assert {"torch", "timm"} <= set(run.library_versions) and run.device == "cpu" and run.code_version
    frame, hand = run.evaluation["frame"], run.evaluation["hand"]
    assert frame["n"] == 6 * 6 and hand["n"] == 6
    assert set(frame["metrics"]) >= {"accuracy", "precision", "recall", "specificity", "f1", "auc"}
    assert set(frame["ci"]) == {"resampling_frames", "resampling_hands_cluster"}
    assert frame["ci"]["resampling_frames"]["auc"]["low"] <= frame["metrics"]["auc"] <= \
        frame["ci"]["resampling_frames"]["auc"]["high"]
    assert hand["roc"]["fpr"][0] == 0 and len(hand["confusion_matrix"]) == 2
    experiment.refresh_from_db()
    comparison = experiment.comparison
    assert comparison["models"] == ["squeezenet1_1"]
    assert comparison["csa_baseline"]["youden_on_training"]["threshold"] > 0
    assert comparison["csa_baseline"]["delong_vs_models"][0]["model"] == "squeezenet1_1"
    assert comparison["csa_between_groups"]["p_value"] < 0.05  # phantom CTS nerves are larger
    # the prediction endpoint reproduces the stored test probabilities for a test hand's clip
    from rest_framework.test import APIClient

    from studyapp.clips.models import Clip
    from tests.factories import UserFactory
    hand_id = hand["hand_ids"][0]
    api = APIClient()
    api.force_authenticate(UserFactory(username="pi2", role="pi"))
    from tests.jobs import run_job

    job = run_job(api, api.post(f"/api/models/{run.pk}/predict/", {"clip": Clip.objects.get(hand_id=hand_id).pk},
                                format="json"))
    assert job["status"] == "done", job["error"]
    result = job["result"]
    assert result["hand_probability"] == pytest.approx(hand["probabilities"][0], abs=1e-5)


def test_same_locked_split_reproduces_the_same_numbers(locked_split, no_queue, tmp_path, settings):
    settings.CTS_CHECKPOINT_DIR = tmp_path / "ckpt"
    results = []
    for attempt in range(2):
        run = launch(locked_split, ["mobilenetv2_100"], random_init=True, name=f"repeat {attempt}").runs.get()
        training.run_train(run_id=run.pk, task_id=f"t{attempt}", worker="w")
        run.refresh_from_db()
        history = [{k: v for k, v in epoch.items() if k != "seconds"} for epoch in run.history]  # wall time varies
        results.append((history, run.evaluation, run.predictions))
    assert results[0] == results[1]


def test_without_weights_the_run_fails_naming_what_is_missing(locked_split, no_queue, tmp_path, settings,
                                                              monkeypatch):
    settings.CTS_CHECKPOINT_DIR = tmp_path / "ckpt"
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    run = launch(locked_split, ["squeezenet1_1"]).runs.get()
    assert not run.random_init and run.config["pretrained"]
    assert training.run_train(run_id=run.pk, task_id="t", worker="w") == "failed"
    run.refresh_from_db()
    assert run.status == "failed" and "squeezenet1_1" in run.error and "random initialisation" in run.error


def test_a_weights_file_named_in_settings_is_loaded(locked_split, no_queue, tmp_path, settings):
    from mlworker.ml import build_model

    settings.CTS_CHECKPOINT_DIR = tmp_path / "ckpt"
    settings.CTS_WEIGHTS_DIR = str(tmp_path / "weights")
    (tmp_path / "weights").mkdir()
    torch.manual_seed(5)
    imagenet_like = build_model("squeezenet1_1", num_classes=1000, pretrained=False)
    torch.save(imagenet_like.state_dict(), tmp_path / "weights" / "squeezenet1_1.pth")
    run = launch(locked_split, ["squeezenet1_1"]).runs.get()
    assert run.config["weights_file"].endswith("squeezenet1_1.pth") and not run.random_init
    assert training.run_train(run_id=run.pk, task_id="t", worker="w") == "done"


def test_a_rerun_reproduces_the_registered_weights_hash(locked_split, no_queue, tmp_path, settings):
    """Same split, seed and settings on the CPU: the same numbers and the same weights SHA-256."""
    from studyapp.experiments.selectors import kept_weights_note

    settings.CTS_CHECKPOINT_DIR = tmp_path / "ckpt"
    first, second = (launch(locked_split, ["squeezenet1_1"], random_init=True, name=f"e{i}").runs.get()
                     for i in range(2))
    for run in (first, second):
        assert training.run_train(run_id=run.pk, task_id=f"t{run.pk}", worker="w") == "done"
        run.refresh_from_db()
    assert first.weights_sha256 == second.weights_sha256
    assert first.predictions["probabilities"] == second.predictions["probabilities"]
    assert first.runtime == second.runtime and first.runtime["torch_threads"] == torch.get_num_threads()
    assert first.runtime["deterministic_algorithms"] is True
    assert f"{first.runtime['torch_threads']} CPU thread(s)" in kept_weights_note(first)


def test_cancel(locked_split, no_queue, tmp_path, settings):
    settings.CTS_CHECKPOINT_DIR = tmp_path / "ckpt"
    experiment = launch(locked_split, ["squeezenet1_1", "mobilenetv2_100"], random_init=True)
    done, cancelled = experiment.runs.order_by("model_name")
    assert training.run_train(run_id=done.pk, task_id="t1", worker="w") == "done"
    experiment.refresh_from_db()
    assert experiment.comparison is None  # one run still queued
    services.run_cancel(run=cancelled)
    cancelled.refresh_from_db()
    assert cancelled.status == "cancelled"
    assert training.run_train(run_id=cancelled.pk, task_id="t2", worker="w") == "not claimed"
    experiment.refresh_from_db()
    assert experiment.comparison["models"] == ["mobilenetv2_100"]  # the finished model, compared with CSA
    assert experiment.comparison["csa_baseline"]["delong_vs_models"][0]["model"] == "mobilenetv2_100"


def test_a_comparison_that_fails_is_recorded_and_the_run_still_ends(locked_split, no_queue):
    experiment = launch(locked_split, ["squeezenet1_1"], random_init=True)
    run = experiment.runs.get()
    # A "done" run without predictions cannot be compared: the error lands on the experiment, the run ends.
    training._finish(training.run_claim(run_id=run.pk, task_id="t", worker="w"), TrainingRun.Status.DONE)
    run.refresh_from_db()
    experiment.refresh_from_db()
    assert run.status == "done"
    assert experiment.comparison["error"].startswith("TypeError")


def test_runs_whose_lease_expired_are_queued_again_and_claimed_once(locked_split, monkeypatch):
    import datetime as dt

    from django.utils import timezone

    from studyapp.common.jobs import requeue_expired

    queued = []
    monkeypatch.setattr(services, "queue_run", queued.append)
    silent, alive = launch(locked_split, ["squeezenet1_1", "mobilenetv2_100"], random_init=True).runs.all()
    now = timezone.now()
    TrainingRun.objects.filter(pk=silent.pk).update(status="running", worker="gone@host", lease_token="t1",
                                                    lease_expires_at=now - dt.timedelta(seconds=1))
    TrainingRun.objects.filter(pk=alive.pk).update(status="running", worker="busy@host", lease_token="t2",
                                                   lease_expires_at=now + dt.timedelta(seconds=30))
    queued.clear()
    assert training.run_claim(run_id=alive.pk, task_id="t", worker="w") is None  # a second delivery of a live run: dropped
    assert requeue_expired(services.TRAINING) == [silent.pk]
    assert queued == [silent.pk]
    assert TrainingRun.objects.get(pk=silent.pk).status == "queued"
    assert TrainingRun.objects.get(pk=alive.pk).status == "running"
    # whichever delivery arrives first takes the requeued run; a later one (say, the old redelivered task) can't
    first = training.run_claim(run_id=silent.pk, task_id="t", worker="w")
    assert first is not None and TrainingRun.objects.get(pk=silent.pk).lease_token == first.token
    assert training.run_claim(run_id=silent.pk, task_id="t", worker="w") is None
    # The holder renews; once it stops, a taker fences it off: its renewals and end state no longer land.
    assert first.renew()
    TrainingRun.objects.filter(pk=silent.pk).update(lease_expires_at=timezone.now() - dt.timedelta(seconds=1))
    second = training.run_claim(run_id=silent.pk, task_id="t", worker="w2")
    assert second is not None and not first.renew() and first.lost
    training._finish(first, TrainingRun.Status.FAILED, error="late")
    assert TrainingRun.objects.get(pk=silent.pk).status == "running"


def test_a_run_trains_on_the_frozen_manifest_after_an_roi_changed(locked_split, no_queue, tmp_path, settings):
    from studyapp.annotations.models import RoiAnnotation

    settings.CTS_CHECKPOINT_DIR = tmp_path / "ckpt"
    run = launch(locked_split, ["squeezenet1_1"], random_init=True).runs.get()
    member = locked_split.members.first()
    roi = RoiAnnotation.objects.filter(frame__clip__hand=member.hand).first()
    RoiAnnotation.objects.filter(pk=roi.pk).update(x=roi.x + 3)  # an annotator's edit after the lock
    assert services.split_verify(locked_split)  # new launches are blocked ...
    assert training.run_train(run_id=run.pk, task_id="t", worker="w") == "done"  # ... the launched run finishes
    run.refresh_from_db()
    assert run.status == "done" and run.error == ""
    assert run.images_per_s > 0  # measured, for later estimates
    assert run.progress["epoch"] == 2 and run.progress["batch"] == run.progress["batches"]


def test_offline_imagenet_weights_fail_in_seconds_naming_cts_weights_dir(locked_split, no_queue, tmp_path, settings,
                                                                         monkeypatch):
    import time

    import huggingface_hub.constants

    settings.CTS_CHECKPOINT_DIR = tmp_path / "ckpt"
    settings.CTS_WEIGHTS_DIR = str(tmp_path / "weights")
    (tmp_path / "weights").mkdir()
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    # A worker without network and without HF_HUB_OFFLINE: the hub sits at a closed local port.
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", "http://127.0.0.1:9")
    run = launch(locked_split, ["efficientnet_b0"]).runs.get()
    began = time.monotonic()
    assert training.run_train(run_id=run.pk, task_id="t", worker="w") == "failed"
    assert time.monotonic() - began < 10  # the hub's retries alone took ~45 s per file
    run.refresh_from_db()
    assert "CTS_WEIGHTS_DIR" in run.error and str(tmp_path / "weights" / "efficientnet_b0.pth") in run.error
    assert "random initialisation" in run.error


def test_a_changed_frame_image_is_caught_by_the_check_and_by_training(locked_split, no_queue, tmp_path, settings,
                                                                       api_for):
    """The manifest covers the pixels: overwriting a member frame's PNG on storage is detected."""
    from django.core.files.storage import default_storage

    from studyapp.clips.models import Frame

    settings.CTS_CHECKPOINT_DIR = tmp_path / "ckpt"
    entry = locked_split.manifest[0]
    assert entry["image_sha256"] == Frame.objects.get(pk=entry["frame"]).sha256 != ""
    api = api_for("pi")
    assert api.get(f"/api/splits/{locked_split.pk}/check/?files=1").json() == {
        "ok": True, "problems": [], "files_checked": True}
    other = Frame.objects.exclude(pk=entry["frame"]).first()
    with default_storage.open(other.image.name, "rb") as handle:
        replacement = handle.read()
    with default_storage.open(entry["image"], "wb") as handle:  # same size and format, other pixels
        handle.write(replacement)
    assert api.get(f"/api/splits/{locked_split.pk}/check/").json()["ok"]  # the database did not change
    body = api.get(f"/api/splits/{locked_split.pk}/check/?files=1").json()
    assert not body["ok"] and f"frame(s) {entry['index']} changed on storage" in body["problems"][0]
    run = launch(locked_split, ["squeezenet1_1"], random_init=True).runs.get()
    assert training.run_train(run_id=run.pk, task_id="t", worker="w") == "failed"
    run.refresh_from_db()
    assert run.status == "failed" and f"frame {entry['frame']}" in run.error and "changed since" in run.error


def test_a_split_locked_before_frames_were_hashed_still_checks_clean(locked_split):
    from django.db.models import QuerySet

    from studyapp.experiments import datasets
    from studyapp.experiments.models import Split

    legacy = [{k: v for k, v in e.items() if k != "image_sha256"} for e in locked_split.manifest]
    # Bypass the lock guard, as a database from before the frame hashes would hold it.
    QuerySet.update(Split.objects.filter(pk=locked_split.pk), manifest=legacy,
                    manifest_hash=datasets.manifest_hash(legacy))
    assert services.split_verify(Split.objects.get(pk=locked_split.pk)) == []


def test_null_controls_train_on_permuted_labels_and_sit_beside_the_real_result(locked_split, no_queue, tmp_path,
                                                                                settings, client_for):
    from studyapp.experiments.models import Experiment
    from studyapp.experiments.selectors import null_distribution

    settings.CTS_CHECKPOINT_DIR = tmp_path / "ckpt"
    real = launch(locked_split, ["squeezenet1_1"], random_init=True, name="real", null_controls=2)
    controls = list(real.null_controls.order_by("permutation_seed"))
    assert [(c.permutation_seed, c.name) for c in controls] == [(1, "real · null control 1"),
                                                                (2, "real · null control 2")]
    # The control's training labels are shuffled across hands; its test labels are the truth.
    entries = locked_split.manifest
    fit_set, val_set, test_set = services.fit_val_test(entries, seed=0, permutation_seed=1)
    true = {e["hand"]: e["label"] for e in entries}
    train_hands = {e["hand"]: e["label"] for e in fit_set + val_set}
    assert train_hands != {h: true[h] for h in train_hands}
    assert sorted(train_hands.values()) == sorted(true[h] for h in train_hands)
    assert all(e["label"] == true[e["hand"]] for e in test_set)
    for experiment in (real, *controls):
        run = experiment.runs.get()
        assert training.run_train(run_id=run.pk, task_id=f"t{run.pk}", worker="w") == "done"
    real_run, control_run = real.runs.get(), controls[0].runs.get()
    assert real_run.predictions["probabilities"] != control_run.predictions["probabilities"]
    null = null_distribution(Experiment.objects.get(pk=real.pk))
    [model] = null["models"]
    assert null["controls"] == 2 and model["n"] == 2 and model["real_auc"] == real_run.evaluation["hand"]["metrics"]["auc"]
    expected_p = (1 + sum(v >= model["real_auc"] for v in model["null_aucs"])) / 3
    assert model["p_value"] == expected_p
    page = client_for("pi").get(f"/experiments/{real.pk}/").content.decode()
    assert 'id="null-distribution"' in page and "2 of 2" in page
    control_page = client_for("pi").get(f"/experiments/{controls[0].pk}/").content.decode()
    assert 'id="null-control-banner"' in control_page and "permutation seed 1" in control_page


def test_null_controls_are_bounded(locked_split, no_queue):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as error:
        launch(locked_split, ["squeezenet1_1"], random_init=True, null_controls=services.MAX_NULL_CONTROLS + 1)
    assert "null_controls" in error.value.message_dict


def test_a_diverging_run_ends_with_its_undefined_losses_saved(locked_split, no_queue, tmp_path, settings,
                                                              monkeypatch):
    """PostgreSQL's jsonb has no NaN: before, saving this history failed the run with a DataError."""
    import mlworker.ml.config

    settings.CTS_CHECKPOINT_DIR = tmp_path / "ckpt"
    monkeypatch.setattr(mlworker.ml.config, "LR_MAX", 1e30)  # the launch refuses such rates; bypass it here
    run = services.experiment_launch(split=locked_split, models=["squeezenet1_1"], random_init=True,
                                     hyperparameters={**TRAIN_FAST, "lr": 1e6, "optimizer": "sgd"}).runs.get()
    assert training.run_train(run_id=run.pk, task_id="t", worker="w") == "failed"
    run.refresh_from_db()
    assert run.status == "failed" and "diverged" in run.error and "lower learning rate" in run.error
    assert run.history and run.history[-1]["train_loss"] is None
    assert "diverged" in run.history[-1]["train_loss_undefined"]


def test_undefined_numbers_in_an_evaluation_are_stored_as_null(locked_split, no_queue):
    """The one sanitiser every run JSON goes through, against the real column."""
    import math

    from mlworker.finite import json_safe

    run = launch(locked_split, ["squeezenet1_1"], random_init=True).runs.get()
    TrainingRun.objects.filter(pk=run.pk).update(evaluation=json_safe({"hand": {"auc": math.nan, "n": 2}}))
    run.refresh_from_db()
    assert run.evaluation == {"hand": {"auc": None, "n": 2}}


def test_the_runs_of_a_split_share_one_decoded_crop_cache(locked_split, no_queue, tmp_path, settings):
    """The second run reads the first one's crops: it trains though every frame image is gone from storage."""
    from django.core.files.storage import default_storage

    settings.CTS_CHECKPOINT_DIR = tmp_path / "ckpt"
    first, second = launch(locked_split, ["squeezenet1_1", "mobilenetv2_100"], random_init=True).runs.all()
    assert training.run_train(run_id=first.pk, task_id="t1", worker="w") == "done"
    [cached] = (tmp_path / "ckpt" / "crops").glob("*.pt")
    assert locked_split.manifest_hash in cached.name and cached.name.endswith(f"_{TRAIN_FAST['input_size']}px.pt")
    for entry in locked_split.manifest:
        default_storage.delete(entry["image"])
    assert training.run_train(run_id=second.pk, task_id="t2", worker="w") == "done"
