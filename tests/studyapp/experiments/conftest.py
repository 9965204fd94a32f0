import pytest

from mlworker.phantom import PhantomConfig
from studyapp.demo.services import demo_seed
from studyapp.protocol.models import StudySettings

TINY = PhantomConfig(width=160, height=120, n_frames=6, pixel_spacing_mm=0.25)
TRAIN_FAST = {"epochs": 2, "batch_size": 16, "input_size": 32, "lr": 1e-3, "early_stopping_patience": None}


def seed_small_study(n_hands=16):
    """A fully annotated phantom cohort: n_hands/2 per group, 6 frames per clip."""
    StudySettings.objects.update_or_create(id=1, defaults={"frames_per_clip": 6})
    demo_seed(n_hands=n_hands, config=TINY, second_rater_every=1000)


@pytest.fixture
def small_study(db):
    seed_small_study()


@pytest.fixture
def two_site_study(small_study):
    from tests.experiment_factories import assign_sites

    return assign_sites()
