"""A PI in Chromium freezes a registered model, then follows the prospective dashboard as cases accrue: sealed
predictions show no value, scored ones feed the statistics and the figures, and the CI width is asked in a form."""

import os

import pytest

from studyapp.prospective.models import ProspectiveModel
from tests.browser.conftest import log_in, wait_until
from tests.factories import UserFactory
from tests.studyapp.prospective.conftest import EPS_CONTROL, EPS_CTS, enter_eps, pending_hand, registered_run, store

SHOTS = "/tmp/cts-prospective-browser"

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True), pytest.mark.timeout(300)]


def test_pi_freezes_a_model_and_reads_the_accrual(live_server, page, tmp_path):
    os.makedirs(SHOTS, exist_ok=True)
    run = registered_run()
    pi = UserFactory(username="pia", role="pi")
    base = live_server.url
    log_in(page, base, pi, "/prospective/")
    assert page.locator("#no-model").is_visible()

    page.select_option("#freeze-form select[name=run]", str(run.pk))
    page.click("#freeze-form button[type=submit]")  # the confirmation box is not ticked: refused
    assert page.locator("#freeze-form").is_visible() and not ProspectiveModel.objects.exists()
    page.check("#freeze-form input[name=confirm]")
    page.click("#freeze-form button[type=submit]")
    page.wait_for_url(f"{base}/prospective/")
    model = ProspectiveModel.objects.get()
    assert "Active model" in page.locator("#frozen-model h3").inner_text()
    assert model.weights_sha256 in page.locator("#frozen-model").inner_text()
    assert page.locator("#no-scored").is_visible()
    page.screenshot(path=f"{SHOTS}/frozen.png", full_page=True)

    for code, probability, eps in (("B1", 0.9, EPS_CTS), ("B2", 0.35, EPS_CTS), ("B3", 0.1, EPS_CONTROL)):
        hand = pending_hand(tmp_path, code=code)
        store(model, hand, probability=probability)
        enter_eps(hand, eps)
    store(model, pending_hand(tmp_path, code="B4"), probability=0.7731)
    page.goto(f"{base}/prospective/")
    assert page.locator("#n-included").inner_text() == "3" and page.locator("#n-sealed").inner_text() == "1"
    sealed_row = page.locator("#case-table tbody tr", has_text="B4")
    assert "sealed until EPS" in sealed_row.inner_text() and "0.773" not in page.content()
    assert "0.900" in page.locator("#case-table tbody tr", has_text="B1").inner_text()
    wait_until(page, "document.querySelector('[data-figure=figure-prospective-accrual] .main-svg') !== null")
    wait_until(page, "document.querySelector('[data-figure=figure-prospective-calibration] .main-svg') !== null")
    still = int(page.locator("#cases-still").inner_text())

    page.fill("#width-form input[name=target_width]", "0.4")
    page.click("#width-form button[type=submit]")
    page.wait_for_url(f"{base}/prospective/?target_width=0.4")
    assert int(page.locator("#cases-still").inner_text()) < still
    page.screenshot(path=f"{SHOTS}/accrual.png", full_page=True)
