import datetime as dt

import pytest

from studyapp.annotations import services as annotation_services
from studyapp.cohort import services as cohort_services
from studyapp.experiments import datasets
from studyapp.experiments.models import TrainingRun
from studyapp.prospective import services
from tests.factories import UserFactory, make_clip, make_hand

EPS_CTS = {"exam_date": dt.date(2026, 6, 1), "dml_ms": 5.2, "sncv_m_s": 38.0}
EPS_CONTROL = {"exam_date": dt.date(2026, 6, 1), "dml_ms": 3.4, "sncv_m_s": 55.0}


def registered_run(name: str = "retro") -> TrainingRun:
    """A done run with a test evaluation, registered with (placeholder) weights: what the PI may freeze."""
    from tests.experiment_factories import evaluated_experiment

    _, (run,) = evaluated_experiment(n_hands=8, frames_per_clip=2, test_per_group=2, models=("squeezenet1_1",),
                                     n_boot=50, name=name)
    TrainingRun.objects.filter(pk=run.pk).update(weights=f"weights/{name}.pt")
    run.refresh_from_db()
    return run


def annotate(clip, annotator) -> None:
    """Confirm an ROI on every frame of the clip, through the annotation service (its hook queues the prediction)."""
    for frame in clip.frames.all():
        annotation_services.roi_save(frame=frame, annotator=annotator, center_x=frame.width / 2,
                                     center_y=frame.height / 2, status="confirmed")


def pending_hand(tmp_path, *, code: str, annotator=None, annotated: bool = True, **hand):
    """A newly enrolled hand without EPS, with a phantom clip whose ROIs are (or are not yet) confirmed."""
    hand = make_hand(study_code=code, **hand)
    clip, _ = make_clip(tmp_path, hand=hand, name=f"{code}.mp4", n_frames=3, seed=hand.pk)
    hand.clip = clip
    if annotated:
        annotate(clip, annotator or UserFactory(username=f"rater-{code}", role="annotator"))
    return hand


def store(model, hand, probability: float = 0.8):
    """The worker's write, with given frame probabilities (the model run itself is tested on a real worker)."""
    entries = datasets.hand_entries(hand)
    frames = [{"frame": e["frame"], "index": e["index"], "probability": probability} for e in entries]
    return services.prospective_prediction_store(model=model, hand=hand, clip=hand.clips.first(), frames=frames,
                                                 input_hash=services.input_sha256(entries),
                                                 weights_sha256=model.weights_sha256)


def enter_eps(hand, eps: dict, user=None):
    return cohort_services.eps_exam_create(hand=hand, history_user=user, **dict(eps))


@pytest.fixture
def pi(db):
    return UserFactory(username="pi-freezer", role="pi")


@pytest.fixture
def frozen(pi):
    return services.prospective_model_freeze(run=registered_run(), frozen_by=pi)
