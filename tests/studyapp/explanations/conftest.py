import pytest

from studyapp.experiments import services as experiment_services
from studyapp.experiments import training
from tests.studyapp.experiments.conftest import TRAIN_FAST, seed_small_study

# Small enough for the CPU: coarse occlusion, few LIME samples (through the job's params, as a PI would).
FAST_PARAMS = {"occlusion": {"patch_mm": 3.0, "stride_mm": 1.5}, "lime": {"num_samples": 40, "n_segments": 12}}


def train_tiny_run(name="tiny"):
    """A locked split of the small phantom study and one done SqueezeNet run at 32 px (random init)."""
    split = experiment_services.split_lock(split=experiment_services.split_create(name=name, seed=1,
                                                                                  test_per_group=3))
    run = experiment_services.experiment_launch(split=split, name=name, models=["squeezenet1_1"], random_init=True,
                                                hyperparameters=TRAIN_FAST).runs.get()
    assert training.run_train(run_id=run.pk, task_id="t", worker="w") == "done"
    run.refresh_from_db()
    return run


@pytest.fixture
def small_study(db):
    seed_small_study()


@pytest.fixture
def trained_run(small_study, monkeypatch, tmp_path, settings):
    settings.CTS_CHECKPOINT_DIR = tmp_path / "ckpt"
    monkeypatch.setattr(experiment_services, "queue_run", lambda run_id: None)
    return train_tiny_run()
