"""In a real browser: the PI adds a site, a coordinator uploads a video choosing it, then corrects the clip's
site with a reason. Checked in the ORM and the clip's history."""

import pytest

from studyapp.clips import services as clip_services
from studyapp.clips.models import Clip
from studyapp.sites import services as site_services
from studyapp.sites.models import Site
from tests.browser.conftest import log_in
from tests.factories import UserFactory, make_hand, phantom_file

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]


def test_pi_adds_a_site_coordinator_uploads_there_and_corrects_it(live_server, page, tmp_path, monkeypatch):
    monkeypatch.setattr(clip_services, "_queue_extraction", lambda clip_id: None)
    base = live_server.url
    pi = UserFactory(username="petra", role="pi")
    coordinator = UserFactory(username="cora", role="coordinator")
    west = site_services.site_create(code="west", name="West Hospital", institution_names=["West Hosp"])
    hand = make_hand(study_code="SITE-1")
    video, _ = phantom_file(tmp_path, "east.mp4", n_frames=4)

    log_in(page, base, pi, "/sites/")
    page.click("#add-site")
    page.wait_for_url(f"{base}/sites/new/")
    page.fill("#id_code", "east")
    page.fill("#id_name", "East Clinic")
    page.fill("#id_institution_names", "East Clinic\nEAST  CLINIC RADIOLOGY")
    page.click("main form button[type=submit]")
    page.wait_for_url(f"{base}/sites/")
    assert "East Clinic" in page.inner_text("#site-east")
    east = Site.objects.get(code="east")
    assert east.institution_names == ["East Clinic", "EAST CLINIC RADIOLOGY"]
    assert east.history.get().history_user == pi

    page.context.clear_cookies()
    log_in(page, base, coordinator, f"/clips/hands/{hand.pk}/upload/")
    page.set_input_files("#id_file", str(video))
    page.fill("#id_pixel_spacing_mm", "0.25")
    page.select_option("#id_site", str(east.pk))
    page.fill("#id_scanner_manufacturer", "Esaote")
    page.fill("#id_scanner_model", "MyLab")
    page.click("main form button[type=submit]")
    page.wait_for_url(f"{base}/clips/*/")
    clip = Clip.objects.get()
    assert (clip.site, clip.site_source, clip.scanner_manufacturer, clip.scanner_model) == (
        east, "entered", "Esaote", "MyLab")
    assert "east" in page.inner_text("#clip-site") and "Esaote MyLab" in page.inner_text("#clip-scanner")

    # The correction: another site, a scanner model fixed, and why.
    page.select_option("#site-correction select[name=site]", str(west.pk))
    page.fill("#site-correction input[name=scanner_model]", "MyLab 9")
    page.fill("#site-correction input[name=reason]", "Scanned at West per the scan log")
    page.click("#site-correction button[type=submit]")
    page.wait_for_url(f"{base}/clips/{clip.pk}/")
    assert "west" in page.inner_text("#clip-site")
    assert "Scanned at West per the scan log" in page.inner_text("#site-corrections")
    clip.refresh_from_db()
    assert (clip.site, clip.site_source, clip.scanner_model) == (west, "corrected", "MyLab 9")
    latest = clip.history.order_by("-history_id").first()
    assert (latest.history_user, latest.history_change_reason) == (coordinator, "Scanned at West per the scan log")
