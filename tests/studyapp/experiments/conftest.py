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


def assign_two_sites(scanners=("Acme Sono 5", "Boreal UX 9")):
    """Sites A and B (and one scanner each) on the study's clips: alternate participants of each group, so
    both groups are at both sites and a participant's clips are all at one."""
    from studyapp.clips.models import Clip
    from studyapp.cohort.models import Hand
    from studyapp.sites.models import Site

    sites = [Site.objects.create(code=code, name=f"Hospital {code}") for code in ("A", "B")]
    seen: dict[str, list[int]] = {}
    for hand in Hand.objects.order_by("participant_id", "pk"):
        participants = seen.setdefault(hand.group, [])
        if hand.participant_id not in participants:
            participants.append(hand.participant_id)
    for participants in seen.values():
        for i, participant in enumerate(participants):
            manufacturer, model = scanners[i % 2].rsplit(" ", 1)
            Clip.objects.filter(hand__participant_id=participant).update(
                site=sites[i % 2], scanner_manufacturer=manufacturer, scanner_model=model)
    return sites


@pytest.fixture
def two_site_study(small_study):
    return assign_two_sites()
