import pytest

from studyapp.experiments import services
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
    services.run_train(run_id=queued[0], task_id="t", worker="w")
    page = pi.get(f"/experiments/{experiment.pk}/").content.decode()
    assert "hands (n=6)" in page and "Manual-CSA baseline" in page and "Mann–Whitney" in page
    assert 'hx-trigger="every 2s"' not in page


def test_cancel_from_the_page(client_for, small_study, monkeypatch):
    monkeypatch.setattr(services, "queue_run", lambda run_id: None)
    split = services.split_lock(split=services.split_create(name="s", test_per_group=2))
    run = services.experiment_launch(split=split, models=["squeezenet1_1"], random_init=True).runs.get()
    assert client_for("coordinator").post(f"/experiments/runs/{run.pk}/cancel/").status_code == 403
    client_for("pi").post(f"/experiments/runs/{run.pk}/cancel/")
    run.refresh_from_db()
    assert run.status == "cancelled"
