"""The PI's prediction page: a tiny registered model run on clips of its test set, its training set and neither."""

import re

import pytest

from studyapp.clips import services as clip_services
from studyapp.clips.models import Clip
from studyapp.experiments import services
from studyapp.experiments import training
from studyapp.experiments.models import TrainingRun
from tests.factories import UserFactory, make_clip, make_hand
from tests.studyapp.experiments.conftest import TRAIN_FAST

pytestmark = pytest.mark.django_db


@pytest.fixture
def registered(small_study, monkeypatch, tmp_path, settings):
    """A locked split, one done run with weights, and one run that is still queued (not a registered model)."""
    settings.CTS_CHECKPOINT_DIR = tmp_path / "ckpt"
    monkeypatch.setattr(services, "queue_run", lambda run_id: None)
    split = services.split_lock(split=services.split_create(name="main", seed=1, test_per_group=3))
    run = services.experiment_launch(split=split, name="tiny", models=["squeezenet1_1"], random_init=True,
                                     hyperparameters=TRAIN_FAST).runs.get()
    assert training.run_train(run_id=run.pk, task_id="t", worker="w") == "done"
    queued = services.experiment_launch(split=split, name="later", models=["mobilenetv2_100"], random_init=True,
                                        hyperparameters=TRAIN_FAST).runs.get()
    run.refresh_from_db()
    return run, queued


def _text(html: str, element_id: str) -> str:
    match = re.search(rf'<(\w+)[^>]*id="{element_id}".*?</\1>', html, re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", match.group(0))) if match else ""


def _predict(pi, clip, run, *, run_job=True) -> str:
    """Choose the model on the page (POST), let the worker's job run here, and open the page it sends you to."""
    from studyapp.experiments.prediction import prediction_run

    response = pi.post(f"/experiments/clips/{clip.pk}/predict/", {"model": run.pk})
    assert response.status_code == 302, response.content
    job_id = int(response["Location"].rsplit("job=", 1)[1])
    if run_job:
        prediction_run(job_id=job_id)
    return pi.get(response["Location"]).content.decode()


def test_prediction_page_shows_frames_hand_and_the_set_the_hand_was_in(client_for, registered, tmp_path,
                                                                       monkeypatch):
    run, queued = registered
    pi = client_for("pi")
    test_hand = run.evaluation["hand"]["hand_ids"][0]
    test_clip = Clip.objects.get(hand_id=test_hand)

    picker = pi.get(f"/experiments/clips/{test_clip.pk}/predict/").content.decode()
    assert f'<option value="{run.pk}"' in picker and f'<option value="{queued.pk}"' not in picker
    assert 'id="frame-table"' not in picker

    # Queued, not yet run: the page follows the job (job.js polls it) and shows no numbers yet.
    waiting = _predict(pi, test_clip, run, run_job=False)
    assert "waiting for a worker" in _text(waiting, "job-status") and "js/job.js" in waiting
    assert 'id="hand-probability"' not in waiting

    html = _predict(pi, test_clip, run)  # the same request again: the queued job, now run
    expected = run.evaluation["hand"]["probabilities"][0]
    assert _text(html, "hand-probability").strip() == f"{expected:.3f}"
    assert len(re.findall(r"<tr><td>\d+</td>", _text_block(html, "frame-table"))) == test_clip.frames.count()
    assert html.count('<span style="background: rgb(') == test_clip.frames.count()  # the strip, one per frame
    warning = _text(html, "leakage-warning")
    assert "test set" in warning and "experiment's results" in warning
    assert "No heatmaps exist for this model yet" in _text(html, "heatmaps")
    assert 'id="partial-warning"' not in html and 'id="prediction-job"' not in html and "js/job.js" not in html

    # Some frames lose their ROI: only the others are predicted, and the page says so.
    from studyapp.annotations.models import RoiAnnotation
    RoiAnnotation.objects.filter(frame__clip=test_clip, frame__index__gte=4).delete()
    html = _predict(pi, test_clip, run)
    assert "Only 4 of 6 extracted frames" in _text(html, "partial-warning")
    assert len(re.findall(r"<tr><td>\d+</td>", _text_block(html, "frame-table"))) == 4

    train_hand = next(m.hand_id for m in run.experiment.split.members.filter(subset="train"))
    train_clip = Clip.objects.get(hand_id=train_hand)
    html = _predict(pi, train_clip, run)
    warning = _text(html, "leakage-warning")
    assert "training set" in warning and "optimistic" in warning and 'id="hand-probability"' in html

    # A hand outside the split, its clip not annotated yet: refused before anything is queued, no numbers.
    monkeypatch.setattr(clip_services, "_queue_extraction", lambda clip_id: None)
    new_clip, _ = make_clip(tmp_path, hand=make_hand(), seed=99, n_frames=4)
    response = pi.post(f"/experiments/clips/{new_clip.pk}/predict/", {"model": run.pk})
    html = response.content.decode()
    assert response.status_code == 400 and "no confirmed ROI" in _text(html, "predict-error")
    assert 'id="leakage-warning"' not in html and 'id="hand-probability"' not in html

    # A model that is not registered: refused with a message.
    response = pi.post(f"/experiments/clips/{test_clip.pk}/predict/", {"model": queued.pk})
    assert response.status_code == 400 and "registered models" in _text(response.content.decode(), "predict-error")


def test_a_failed_prediction_shows_why_and_a_job_is_its_owners(client_for, registered, users):
    from studyapp.experiments.prediction import prediction_run

    run, _ = registered
    clip = Clip.objects.get(hand_id=run.evaluation["hand"]["hand_ids"][0])
    pi = client_for("pi")
    location = pi.post(f"/experiments/clips/{clip.pk}/predict/", {"model": run.pk})["Location"]
    run.weights.storage.delete(run.weights.name)  # lost from storage before the worker got to it
    job = prediction_run(job_id=int(location.rsplit("=", 1)[1]))
    assert job.status == "failed" and "missing from storage" in job.error
    html = pi.get(location).content.decode()
    assert "missing from storage" in _text(html, "predict-error") and 'id="hand-probability"' not in html
    pi.force_login(UserFactory(username="pi2", role="pi"))
    assert pi.get(location).status_code == 404  # another PI's job
    assert pi.get(f"/experiments/clips/{clip.pk}/predict/?job=abc").status_code == 404


def _text_block(html: str, element_id: str) -> str:
    match = re.search(rf'<table[^>]*id="{element_id}".*?</table>', html, re.S)
    return match.group(0) if match else ""


def test_without_a_registered_model_the_page_says_so(client_for, tmp_path, monkeypatch):
    monkeypatch.setattr(clip_services, "_queue_extraction", lambda clip_id: None)
    clip, _ = make_clip(tmp_path, n_frames=4)
    assert not TrainingRun.objects.exists()
    html = client_for("pi").get(f"/experiments/clips/{clip.pk}/predict/").content.decode()
    assert "No registered model yet" in _text(html, "no-models")


@pytest.mark.parametrize("role, status", [("pi", 200), ("admin", 200), ("annotator", 403), ("coordinator", 403)])
def test_prediction_is_for_the_pi(client_for, tmp_path, monkeypatch, role, status):
    monkeypatch.setattr(clip_services, "_queue_extraction", lambda clip_id: None)
    clip, _ = make_clip(tmp_path, n_frames=4, extract=False)
    assert client_for(role).get(f"/experiments/clips/{clip.pk}/predict/").status_code == status
    # Queueing one: refused by role, or on its merits (no such model) for the PI.
    response = client_for(role).post(f"/experiments/clips/{clip.pk}/predict/", {"model": "1"})
    assert response.status_code == (400 if status == 200 else 403)
