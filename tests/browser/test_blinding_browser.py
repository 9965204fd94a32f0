"""In Chromium: a second annotator opens a clip the first annotated and sees none of it, nor the diagnosis;
the PI adjudicates the frame where they disagree on the review page."""

import os

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from mlworker.phantom import PhantomConfig, generate_clip, write_video
from studyapp.annotations import services as annotation_services
from studyapp.annotations.models import RoiAdjudication
from studyapp.clips import services
from tests.factories import UserFactory, make_hand
from tests.browser.conftest import log_in, wait_until

CONFIG = PhantomConfig(width=320, height=240, n_frames=8, pixel_spacing_mm=0.125)
SHOTS = os.environ.get("CTS_SCREENSHOTS")  # a folder to keep screenshots of the pages in, when set

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]


@pytest.fixture
def two_raters(tmp_path, monkeypatch):
    """A CTS hand's clip: the first annotator confirmed every frame and outlined the first; the second
    placed one ROI, far from the first's, on frame 4."""
    monkeypatch.setattr(services, "_queue_extraction", lambda clip_id: None)
    first = UserFactory(username="anna", role="annotator")
    second = UserFactory(username="bob", role="annotator")
    pi = UserFactory(username="petra", role="pi")
    phantom = generate_clip("cts", 5, CONFIG)
    path = write_video(phantom, tmp_path / "wrist.mp4")
    hand = make_hand(study_code="BL-0001", eps={"dml_ms": 5.8, "sncv_m_s": 31.0})
    clip = services.clip_upload(hand=hand, upload=SimpleUploadedFile("wrist.mp4", path.read_bytes()),
                                uploaded_by=first, pixel_spacing_mm=CONFIG.pixel_spacing_mm)
    services.clip_extract_frames(clip_id=clip.pk)
    frames = list(clip.frames.order_by("index"))
    for frame in frames:
        cx, cy = (float(v) for v in phantom.centers[frame.index])
        annotation_services.roi_save(frame=frame, annotator=first, center_x=cx, center_y=cy, status="confirmed")
    cx, cy = (float(v) for v in phantom.centers[0])
    annotation_services.outline_create(frame=frames[0], annotator=first,
                                       points=[[cx - 12, cy - 8], [cx + 12, cy - 8], [cx + 12, cy + 8],
                                               [cx - 12, cy + 8]])
    annotation_services.roi_save(frame=frames[4], annotator=second, center_x=250, center_y=180,
                                 status="confirmed")
    return {"clip": clip, "hand": hand, "frames": frames, "first": first, "second": second, "pi": pi}


def _shot(page, name):
    if SHOTS:
        page.screenshot(path=os.path.join(SHOTS, name), full_page=True)


def test_second_annotator_sees_no_roi_outline_or_diagnosis(live_server, page, two_raters):
    clip, base = two_raters["clip"], live_server.url
    log_in(page, base, two_raters["second"], f"/clips/{clip.pk}/annotate/")
    page.wait_for_selector('#annotate[data-ready="true"]')
    wait_until(page, "document.getElementById('frame-canvas').width > 0")
    # Frame 1: the first annotator's confirmed ROI and outline are there, but not for the second.
    assert page.locator("#roi-info").get_attribute("data-status") == "none"
    assert page.locator("#outline-rows").inner_text().strip() == "None on this frame."
    assert page.locator("#count-confirmed").inner_text() == "1"  # bob's own, on frame 5
    statuses = page.locator("#strip > div").evaluate_all("cells => cells.map(c => c.dataset.status)")
    assert statuses.count("confirmed") == 1 and statuses[4] == "confirmed"
    _shot(page, "blind-annotate-second-annotator.png")
    rois = page.request.get(f"{base}/api/annotations/?frame__clip={clip.pk}").json()
    assert {r["annotator"] for r in rois} == {"bob"}
    page.goto(f"{base}/cohort/hands/{two_raters['hand'].pk}/")
    text = page.locator("main").inner_text()
    assert "BL-0001" in text and "Stage" not in text and "CTS" not in text.replace("CTS-Study", "")
    assert "DML" not in text and "Patient" not in text and "You rate blind" in text
    _shot(page, "blind-hand-second-annotator.png")
    page.goto(f"{base}/cohort/")
    assert "Group" not in page.locator("main table").inner_text()
    _shot(page, "blind-cohort-second-annotator.png")


def test_the_pi_adjudicates_a_disagreement_on_the_review_page(live_server, page, two_raters):
    base, frame = live_server.url, two_raters["frames"][4]
    log_in(page, base, two_raters["pi"], "/clips/review/")
    row = page.locator(f'#roi-disagreements tr[data-frame="{frame.pk}"]')
    assert "anna, bob" in row.inner_text()
    _shot(page, "blind-review-list-pi.png")
    row.get_by_role("link", name="Review").click()
    page.wait_for_url(f"{base}/clips/review/frames/{frame.pk}/")
    assert page.locator("rect.rater-box").count() == 2
    page.get_by_label("bob's ROI").check()
    page.fill("#id_note", "bob found the nerve")
    _shot(page, "blind-review-frame-pi.png")
    page.get_by_role("button", name="Save decision").click()
    page.wait_for_url(f"{base}/clips/review/")
    assert "0 to decide" in page.locator("#roi-disagreements h3").inner_text()
    decision = RoiAdjudication.objects.get(frame=frame)
    assert (decision.chosen_annotator, decision.note) == (two_raters["second"], "bob found the nerve")
    assert decision.history.get().history_user == two_raters["pi"]
    page.goto(f"{base}/clips/agreement/")
    assert "Raters were blinded" in page.locator("#blinding").inner_text()
    _shot(page, "blind-agreement-pi.png")
