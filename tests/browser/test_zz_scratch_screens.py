import pytest

from studyapp.annotations import services as annotation_services
from studyapp.annotations.models import RoiAnnotation
from studyapp.clips import services
from studyapp.clips.models import Clip
from studyapp.experiments import services as xs
from studyapp.experiments.models import Split, SplitMember
from tests.factories import UserFactory, make_clip, make_hand
from tests.studyapp.experiments.conftest import TRAIN_FAST, seed_small_study

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True), pytest.mark.timeout(300)]
OUT = "/tmp/annot_shots"


def login(page, base, user, nxt):
    page.goto(f"{base}/accounts/login/?next={nxt}")
    page.fill("#id_username", user.username)
    page.fill("#id_password", "pw-for-tests-1")
    page.click("main form button[type=submit]")
    page.wait_for_url(f"{base}{nxt}")


def test_screens(live_server, page, tmp_path, monkeypatch, settings):
    settings.CTS_CHECKPOINT_DIR = tmp_path / "ckpt"
    monkeypatch.setattr(services, "_queue_extraction", lambda clip_id: None)
    monkeypatch.setattr(xs, "queue_run", lambda run_id: None)
    seed_small_study()
    split = xs.split_lock(split=xs.split_create(name="main", seed=1, test_per_group=3))
    run = xs.experiment_launch(split=split, name="tiny", models=["squeezenet1_1"], random_init=True,
                               hyperparameters=TRAIN_FAST).runs.get()
    xs.run_train(run_id=run.pk, task_id="t", worker="w")
    run.refresh_from_db()
    anna = UserFactory(username="anna", role="annotator")
    cora = UserFactory(username="cora", role="coordinator")
    pi = UserFactory(username="pia", role="pi")
    a, _ = make_clip(tmp_path, hand=make_hand(study_code="W-001"), name="a.mp4", seed=1, n_frames=4)
    services.clip_assign(clip=a, annotator=anna, assigned_by=cora)
    for frame in a.frames.order_by("index")[:2]:
        annotation_services.roi_save(frame=frame, annotator=anna, center_x=80, center_y=60,
                                     status=RoiAnnotation.Status.CONFIRMED)
    make_clip(tmp_path, hand=make_hand(study_code="W-002"), name="b.mp4", seed=2, n_frames=4)
    make_clip(tmp_path, hand=make_hand(study_code="W-003"), name="c.mp4", seed=3, n_frames=4, extract=False)
    base = live_server.url
    test_clip = Clip.objects.get(hand_id=run.evaluation["hand"]["hand_ids"][0])
    for c in Clip.objects.filter(hand__participant__study_code__startswith="DEMO")[:3]:
        services.clip_take(clip=c, annotator=anna)
    login(page, base, anna, "/clips/worklist/")
    page.screenshot(path=f"{OUT}/worklist.png", full_page=True)
    page.goto(f"{base}/clips/{test_clip.pk}/annotate/")
    page.wait_for_selector('#annotate[data-ready="true"]')
    page.screenshot(path=f"{OUT}/annotate_locked.png")
    page.goto(f"{base}/clips/{a.pk}/")
    page.screenshot(path=f"{OUT}/detail_annotator.png", full_page=True)
    page.goto(f"{base}/experiments/")
    page.screenshot(path=f"{OUT}/403.png", full_page=True)
    page.goto(f"{base}/cohort/hands/987654/")
    page.screenshot(path=f"{OUT}/404.png", full_page=True)
    page.context.clear_cookies()
    login(page, base, cora, f"/clips/{a.pk}/")
    page.screenshot(path=f"{OUT}/detail_coordinator.png", full_page=True)
    page.context.clear_cookies()
    login(page, base, pi, f"/clips/{test_clip.pk}/")
    page.screenshot(path=f"{OUT}/detail_pi.png", full_page=True)
    page.click("#predict-link")
    page.screenshot(path=f"{OUT}/predict_picker.png", full_page=True)
    page.select_option("select[name=model]", str(run.pk))
    page.click("#predict-form button")
    page.wait_for_selector("#hand-probability")
    page.screenshot(path=f"{OUT}/predict_test.png", full_page=True)
    train_hand = split.members.filter(subset="train").first().hand_id
    page.goto(f"{base}/experiments/clips/{Clip.objects.get(hand_id=train_hand).pk}/predict/?model={run.pk}")
    page.screenshot(path=f"{OUT}/predict_train.png")
    page.goto(f"{base}/experiments/clips/{a.pk}/predict/?model={run.pk}")
    page.screenshot(path=f"{OUT}/predict_error.png")
    page.context.clear_cookies()
    page.goto(f"{base}/nowhere/")
    page.screenshot(path=f"{OUT}/404_anon.png")


@pytest.mark.urls("tests.studyapp.common.error_urls")
def test_500(live_server, page, settings):
    settings.DEBUG = False
    settings.DEBUG_PROPAGATE_EXCEPTIONS = False
    page.goto(f"{live_server.url}/fail/")
    page.screenshot(path=f"{OUT}/500.png")
