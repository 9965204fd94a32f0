import pytest

from studyapp.experiments import services
from studyapp.experiments import training
from studyapp.experiments.models import Experiment, Split
from tests.studyapp.experiments.conftest import TRAIN_FAST

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("role, status", [("pi", 200), ("admin", 200), ("coordinator", 403), ("annotator", 403),
                                          ("norole", 403)])
def test_experiments_pages_are_for_the_pi(client_for, role, status):
    assert client_for(role).get("/experiments/").status_code == status


def test_pi_makes_locks_launches_and_reads_results(client_for, small_study, monkeypatch, tmp_path, settings,
                                                   django_capture_on_commit_callbacks):
    settings.CTS_CHECKPOINT_DIR = tmp_path / "ckpt"
    queued = []
    monkeypatch.setattr(services, "queue_run", queued.append)
    pi = client_for("pi")
    response = pi.post("/experiments/", {"name": "main", "seed": "1", "test_per_group": "3", "train_per_group": ""})
    assert response.status_code == 302
    split = Split.objects.get()
    assert "Lock" in pi.get("/experiments/").content.decode()
    pi.post(f"/experiments/splits/{split.pk}/lock/")
    split.refresh_from_db()
    assert split.is_locked
    page = pi.get(f"/experiments/splits/{split.pk}/").content.decode()
    assert "Launch training" in page
    bad = pi.post(f"/experiments/splits/{split.pk}/", {"models": ["squeezenet1_1"], "epochs": "0", "batch_size": "8",
                                                       "lr": "0.001", "optimizer": "adam", "input_size": "32",
                                                       "seed": "0"})
    assert bad.status_code == 200 and "epochs_errors" in bad.content.decode() and not Experiment.objects.exists()
    with django_capture_on_commit_callbacks(execute=True):
        response = pi.post(f"/experiments/splits/{split.pk}/", {
            "name": "first", "models": ["squeezenet1_1"], "epochs": TRAIN_FAST["epochs"], "batch_size": "16",
            "lr": "0.001", "optimizer": "adam", "input_size": "32", "seed": "0", "random_init": "on"})
    experiment = Experiment.objects.get()
    assert response["Location"].endswith(f"/experiments/{experiment.pk}/") and len(queued) == 1
    page = pi.get(f"/experiments/{experiment.pk}/").content.decode()
    assert "random init" in page and 'hx-trigger="every 2s"' in page
    training.run_train(run_id=queued[0], task_id="t", worker="w")
    page = pi.get(f"/experiments/{experiment.pk}/").content.decode()
    assert "hands (n=6)" in page and "Manual-CSA baseline" in page and "Mann–Whitney" in page
    assert "Weights of epoch" in page and "lowest validation loss" in page and "All 2 planned epochs ran." in page
    assert 'hx-trigger="every 2s"' not in page


def test_cancel_from_the_page(client_for, small_study, monkeypatch):
    monkeypatch.setattr(services, "queue_run", lambda run_id: None)
    split = services.split_lock(split=services.split_create(name="s", test_per_group=2))
    run = services.experiment_launch(split=split, models=["squeezenet1_1"], random_init=True).runs.get()
    assert client_for("coordinator").post(f"/experiments/runs/{run.pk}/cancel/").status_code == 403
    client_for("pi").post(f"/experiments/runs/{run.pk}/cancel/")
    run.refresh_from_db()
    assert run.status == "cancelled"


def test_the_list_shows_which_locked_splits_are_blocked_and_why(client_for, small_study):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from studyapp.annotations.models import RoiAnnotation

    blocked = services.split_lock(split=services.split_create(name="changed", seed=3, test_per_group=3))
    member = blocked.members.first()
    roi = RoiAnnotation.objects.filter(frame__clip__hand=member.hand).first()
    RoiAnnotation.objects.filter(pk=roi.pk).update(w=roi.w + 4)
    services.split_lock(split=services.split_create(name="ready", test_per_group=2))  # locked with the edit
    pi = client_for("pi")
    with CaptureQueriesContext(connection) as queries:
        page = pi.get("/experiments/").content.decode()
    assert page.count("ready to train") == 1 and "1 hand changed since the lock" in page
    assert f"{member.hand}: label, frames or ROIs changed since the split was locked." in page
    # Checking a split costs a fixed number of queries, not a few per member hand (16 hands here).
    assert len(queries) < 25


def test_readable_errors_for_a_split_too_large_and_no_model(client_for, small_study):
    pi = client_for("pi")
    page = pi.post("/experiments/", {"name": "big", "seed": "0", "test_per_group": "50", "train_per_group": ""})
    text = page.content.decode()
    assert "Training and testing each need hands of both groups" in text and "{&#x27;" not in text
    assert "from 8 control and 8 CTS hands eligible now" in text and not Split.objects.exists()
    split = services.split_lock(split=services.split_create(name="s", test_per_group=2))
    page = pi.post(f"/experiments/splits/{split.pk}/", {"epochs": "2", "batch_size": "8", "lr": "0.001",
                                                        "optimizer": "adam", "input_size": "32", "seed": "0"})
    assert 'id="id_models_errors"' in page.content.decode() and "This field is required." in page.content.decode()
    assert not Experiment.objects.exists()


def test_launch_form_shows_weights_and_an_estimate(client_for, small_study, settings, tmp_path):
    settings.CTS_WEIGHTS_DIR = str(tmp_path)
    (tmp_path / "squeezenet1_1.pth").write_bytes(b"x")
    split = services.split_lock(split=services.split_create(name="s", test_per_group=2))
    pi = client_for("pi")
    page = pi.get(f"/experiments/splits/{split.pk}/").content.decode()
    assert page.count("ImageNet weights found") >= 1 and "Random initialisation" in page
    assert "Estimated training time" in page and "reference figure" in page
    fit_crops = len(services.fit_val_test(split.manifest, seed=0)[0])
    part = pi.get(f"/experiments/splits/{split.pk}/estimate/",
                  {"models": ["squeezenet1_1"], "epochs": "10", "input_size": "224", "seed": "0"}).content.decode()
    assert f"{fit_crops} training crops of the locked manifest × 10 epochs" in part and "SqueezeNet 1.1" in part
    assert "MobileNetV2" not in part
    assert "Tick at least one model" in pi.get(f"/experiments/splits/{split.pk}/estimate/",
                                               {"epochs": "10"}).content.decode()


def test_a_running_run_whose_cancel_was_asked_shows_cancelling(client_for, small_study, monkeypatch):
    from studyapp.experiments.models import TrainingRun

    monkeypatch.setattr(services, "queue_run", lambda run_id: None)
    split = services.split_lock(split=services.split_create(name="s", test_per_group=2))
    run = services.experiment_launch(split=split, models=["squeezenet1_1"], random_init=True).runs.get()
    TrainingRun.objects.filter(pk=run.pk).update(status="running", progress={
        "epoch": 3, "epochs": 30, "batch": 5, "batches": 20, "images": 160, "elapsed_s": 8.0, "images_per_s": 20.0,
        "epoch_eta_s": 24.0, "run_eta_s": 900.0})
    pi = client_for("pi")
    page = pi.get(f"/experiments/{run.experiment_id}/").content.decode()
    assert "Epoch 3: batch 5/20 · 20.0 images/s · epoch ends in 24 s · run ends in 15 min at most" in page
    assert 'data-confirm="Training stops within a few seconds' in page
    response = pi.post(f"/experiments/runs/{run.pk}/cancel/", follow=True)
    page = response.content.decode()
    assert "Cancelling…" in page and "cancelling… it stops within a few seconds" in page
    assert f"/experiments/runs/{run.pk}/cancel/" not in page  # no second Cancel button
