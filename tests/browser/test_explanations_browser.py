"""A PI in Chromium on the explanation gallery: filters, the opacity slider, no script errors."""

import os

import pytest

from studyapp.explanations import explaining, services
from tests.factories import TEST_PASSWORD, UserFactory
from tests.studyapp.experiments.conftest import seed_small_study
from tests.studyapp.explanations.conftest import FAST_PARAMS, train_tiny_run

SHOTS = "/tmp/cts-explanations-browser"

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True), pytest.mark.timeout(300)]


def test_pi_filters_the_gallery_and_moves_the_opacity_slider(live_server, page, monkeypatch, tmp_path, settings):
    from studyapp.experiments import services as experiment_services

    os.makedirs(SHOTS, exist_ok=True)
    settings.CTS_CHECKPOINT_DIR = tmp_path / "ckpt"
    monkeypatch.setattr(experiment_services, "queue_run", lambda run_id: None)
    monkeypatch.setattr(services, "queue_job", lambda job_id: None)
    seed_small_study()
    run = train_tiny_run()
    for job in services.jobs_queue(run=run, params=FAST_PARAMS):
        assert explaining.job_run(job_id=job.pk, task_id=f"t{job.pk}", worker="w") == "done"
    pi = UserFactory(username="pix", role="pi")
    base = live_server.url
    url = f"/experiments/{run.experiment_id}/"
    page.goto(f"{base}/accounts/login/?next={url}")
    page.fill("#id_username", pi.username)
    page.fill("#id_password", TEST_PASSWORD)
    page.click("main form button[type=submit]")
    page.wait_for_url(f"{base}{url}")
    page.click("#explanations-link")
    page.wait_for_selector(".xp-frame")
    page.locator(".xp-frame img").first.wait_for()
    assert page.locator(".xp-frame").count() == 12
    page.screenshot(path=f"{SHOTS}/gallery.png", full_page=True)

    page.wait_for_selector("#gallery[data-ready]")  # the slider's script has run
    slider = page.locator("#opacity")
    slider.focus()
    page.keyboard.press("Home")  # 0, then step up by keyboard as a person would
    for _ in range(15):
        page.keyboard.press("ArrowRight")
    assert page.locator("#opacity-value").inner_text() == "15%"
    opacity = page.locator(".xp-heat").first.evaluate("el => getComputedStyle(el).opacity")
    assert float(opacity) == pytest.approx(0.15, abs=0.01)

    page.select_option("select[name=method]", "occlusion")
    page.select_option("select[name=frame_outcome]", "TN")
    page.click("#explanation-filters button[type=submit]")
    page.wait_for_url("**frame_outcome=TN**")
    frames = page.locator(".xp-frame")
    for i in range(frames.count()):
        assert ">TN<" in frames.nth(i).inner_html()
        assert frames.nth(i).locator(".xp-heat").count() == 1  # the occlusion column only
    assert "occlusion" in page.locator("#summary").inner_text()
    page.screenshot(path=f"{SHOTS}/gallery-filtered.png", full_page=True)
