"""A PI in Chromium runs a registered model on a clip: the page queues it, follows the worker's job and shows
the frames' and the hand's CTS probability, the same as the direct computation."""

import os

import pytest

from studyapp.clips.models import Clip
from studyapp.experiments import services, training
from studyapp.experiments.prediction import predict_clip
from tests.browser.conftest import log_in
from tests.factories import UserFactory
from tests.studyapp.experiments.conftest import TRAIN_FAST, seed_small_study

SHOTS = "/tmp/cts-prediction-browser"

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.django_db(transaction=True),
              pytest.mark.timeout(300)]


def test_pi_predicts_a_clip_through_the_worker(live_server, page, celery_worker_process, settings, tmp_path,
                                               monkeypatch):
    os.makedirs(SHOTS, exist_ok=True)
    settings.MEDIA_ROOT = celery_worker_process.media_root
    settings.CTS_CHECKPOINT_DIR = tmp_path / "ckpt"
    monkeypatch.setattr(services, "queue_run", lambda run_id: None)  # trained here, below
    seed_small_study()
    split = services.split_lock(split=services.split_create(name="main", seed=1, test_per_group=3))
    run = services.experiment_launch(split=split, name="tiny", models=["squeezenet1_1"], random_init=True,
                                     hyperparameters=TRAIN_FAST).runs.get()
    assert training.run_train(run_id=run.pk, task_id="t", worker="w") == "done"
    run.refresh_from_db()
    clip = Clip.objects.get(hand_id=run.evaluation["hand"]["hand_ids"][0])
    pi = UserFactory(username="pia", role="pi")
    base = live_server.url
    log_in(page, base, pi, f"/experiments/clips/{clip.pk}/predict/")

    page.select_option("#predict-form select[name=model]", str(run.pk))
    page.click("#predict-form button[type=submit]")
    page.wait_for_url(f"{base}/experiments/clips/{clip.pk}/predict/?job=*")
    if page.locator("#prediction-job").count():  # still on the worker: the page shows where it is
        page.screenshot(path=f"{SHOTS}/predict-waiting.png", full_page=True)
    page.wait_for_selector("#hand-probability", timeout=120_000)  # job.js reloaded the page when done
    assert page.locator("#prediction-job").count() == 0 and page.locator("#predict-error").count() == 0
    direct = predict_clip(run=run, clip=clip)
    assert page.locator("#hand-probability").inner_text().strip() == f"{direct['hand_probability']:.3f}"
    assert page.locator("#frame-table tbody tr").count() == len(direct["frames"]) == clip.frames.count()
    assert "test set" in page.locator("#leakage-warning").inner_text()
    page.screenshot(path=f"{SHOTS}/predict-done.png", full_page=True)
