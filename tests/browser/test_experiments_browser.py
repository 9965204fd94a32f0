"""A PI in Chromium: Lock asks first (dismissing keeps the draft), a launch with no model says why, and
Cancel asks first too. Checked through the ORM."""

import pytest

from studyapp.experiments import services
from studyapp.experiments.models import Split, TrainingRun
from tests.factories import UserFactory
from tests.studyapp.experiments.conftest import seed_small_study
from tests.browser.conftest import log_in

SHOTS = "/tmp/cts-experiments-browser"

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True), pytest.mark.timeout(180)]


def test_pi_confirms_lock_and_cancel_and_reads_the_no_model_error(live_server, page, monkeypatch, tmp_path):
    import os

    os.makedirs(SHOTS, exist_ok=True)
    monkeypatch.setattr(services, "queue_run", lambda run_id: None)  # no broker: the run stays queued
    seed_small_study()
    split = services.split_create(name="main", seed=1, test_per_group=3)
    pi = UserFactory(username="pia", role="pi")
    base = live_server.url
    log_in(page, base, pi, f"/experiments/splits/{split.pk}/")

    # Lock asks first; "Keep it as a draft" leaves the split as it was.
    page.get_by_role("button", name="Lock", exact=True).click()
    dialog = page.locator("#confirm-dialog")
    dialog.wait_for(state="visible")
    assert "Locking freezes its members and their data" in dialog.inner_text()
    page.screenshot(path=f"{SHOTS}/lock-confirm.png", full_page=True)
    dialog.get_by_role("button", name="Keep it as a draft").click()
    dialog.wait_for(state="hidden")
    split.refresh_from_db()
    assert split.status == Split.Status.DRAFT

    # Asked again and accepted: locked, and the page offers the launch form.
    page.get_by_role("button", name="Lock", exact=True).click()
    dialog.get_by_role("button", name="Lock the split").click()
    page.wait_for_selector("text=Launch training")
    split.refresh_from_db()
    assert split.is_locked and page.locator(".messages").inner_text().startswith(f"Locked {split}")
    page.wait_for_selector("#estimate >> text=Estimated training time")
    page.screenshot(path=f"{SHOTS}/launch-form.png", full_page=True)

    # No model ticked: the message stands next to the models, not only red outlines.
    for box in page.locator("input[name=models]").all():
        box.uncheck()
    page.wait_for_selector("#estimate >> text=Tick at least one model")
    page.click("button:has-text('Launch')")
    page.wait_for_selector("#id_models_errors")
    assert "This field is required." in page.locator("#id_models_errors").inner_text()
    page.screenshot(path=f"{SHOTS}/no-model.png", full_page=True)

    # Launch one model with random initialisation, then Cancel: dismissed first, accepted second.
    page.check("input[name=models][value=squeezenet1_1]")
    page.check("input[name=random_init]")
    page.fill("#id_epochs", "2")
    page.click("button:has-text('Launch')")
    page.wait_for_selector("text=Test results")
    run = TrainingRun.objects.get()
    page.click("button:has-text('Cancel')")
    dialog.wait_for(state="visible")
    assert "leaves the queue" in dialog.inner_text()
    page.screenshot(path=f"{SHOTS}/cancel-confirm.png", full_page=True)
    dialog.get_by_role("button", name="Keep training").click()
    dialog.wait_for(state="hidden")
    run.refresh_from_db()
    assert run.status == TrainingRun.Status.QUEUED
    page.click("button:has-text('Cancel')")
    dialog.get_by_role("button", name="Cancel the run").click()
    page.wait_for_selector(".messages >> text=cancelled")
    run.refresh_from_db()
    assert run.status == TrainingRun.Status.CANCELLED

    # The list shows the split blocked, with the reason, once an ROI of a member changed after the lock.
    from studyapp.annotations.models import RoiAnnotation

    roi = RoiAnnotation.objects.filter(frame__clip__hand=split.members.first().hand).first()
    RoiAnnotation.objects.filter(pk=roi.pk).update(x=roi.x + 2)
    page.goto(f"{base}/experiments/")
    page.click("text=1 hand changed since the lock")
    assert "changed since the split was locked" in page.locator("details.blocked").inner_text()
    page.screenshot(path=f"{SHOTS}/list-blocked.png", full_page=True)

    # A running run shows where it is within the epoch (the worker writes this every ~2 s).
    TrainingRun.objects.filter(pk=run.pk).update(status="running", cancel_requested=False, finished_at=None, progress={
        "epoch": 3, "epochs": 30, "batch": 5, "batches": 20, "images": 160, "elapsed_s": 8.0,
        "images_per_s": 20.0, "epoch_eta_s": 24.0, "run_eta_s": 900.0})
    page.goto(f"{base}/experiments/{run.experiment_id}/")
    assert "Epoch 3: batch 5/20 · 20.0 images/s" in page.locator("#runs").inner_text()
    page.screenshot(path=f"{SHOTS}/running.png", full_page=True)
    TrainingRun.objects.filter(pk=run.pk).update(status="cancelled")  # stop the page's polling
