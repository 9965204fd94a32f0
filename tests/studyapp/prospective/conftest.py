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


def _ci(estimate):
    return {"estimate": estimate, "low": None if estimate is None else max(0.0, estimate - 0.1),
            "high": None if estimate is None else min(1.0, estimate + 0.1)}


@pytest.fixture
def prospective_stats(monkeypatch):
    """mlworker.stats.prospective and the figures, or, until the statistics helper's branch is merged, a tiny
    double with their signatures (point estimates from mlworker.stats; the CIs are placeholders)."""
    import importlib
    import sys
    import types

    try:
        importlib.import_module("mlworker.stats.prospective")
        importlib.import_module("studyapp.dashboards.prospective_figures")
        return False
    except ModuleNotFoundError:
        pass
    import numpy as np

    def summary(y_true, y_prob, *, threshold, level=0.95):
        y, p = np.asarray(y_true), np.asarray(y_prob)
        pred = p >= threshold
        sens = float(pred[y == 1].mean()) if (y == 1).any() else None
        spec = float((~pred[y == 0]).mean()) if (y == 0).any() else None
        return {"n": len(y), "n_pos": int(y.sum()), "n_neg": int((1 - y).sum()), "sensitivity": _ci(sens),
                "specificity": _ci(spec), "accuracy": _ci(float((pred == y).mean())), "auc": None,
                "brier": float(np.mean((p - y) ** 2)), "reliability_bins": [], "calibration_slope": None,
                "calibration_intercept": None}

    def needed(*, target_width, sensitivity, specificity, prevalence, level=0.95, metric="both"):
        positives = int(np.ceil(4 * 1.96 ** 2 * sensitivity * (1 - sensitivity) / target_width ** 2))
        total = int(np.ceil(positives / prevalence))
        return {"total": total, "positives": positives, "negatives": total - positives}

    def curve(y_true, y_prob, times, *, threshold, level=0.95):
        return [{"n": i + 1, "time": t} for i, t in enumerate(times)]

    stats = types.ModuleType("mlworker.stats.prospective")
    stats.prospective_summary, stats.cases_needed, stats.accrual_curve = summary, needed, curve
    figures = types.ModuleType("studyapp.dashboards.prospective_figures")
    figures.accrual_figure = lambda accrual: {"data": [{"type": "scatter", "y": [c["n"] for c in accrual]}],
                                              "layout": {"title": {"text": "Accrual"}}}
    figures.calibration_figure = lambda summary: {"data": [], "layout": {"title": {"text": "Calibration"}}}
    monkeypatch.setitem(sys.modules, "mlworker.stats.prospective", stats)
    monkeypatch.setitem(sys.modules, "studyapp.dashboards.prospective_figures", figures)
    return True
