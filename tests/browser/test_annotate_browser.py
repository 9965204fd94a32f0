"""A real browser on the annotation page: log in, place the ROI with the mouse, confirm, propagate and
confirm all with the keyboard, trip over a stale version, trace an outline. Checked through the API and the ORM."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from mlworker.media import crop_box
from mlworker.phantom import PhantomConfig, generate_clip, write_video
from studyapp.annotations import services as annotation_services
from studyapp.annotations.models import NerveOutline, RoiAnnotation
from studyapp.clips import services
from tests.factories import UserFactory, make_hand
from tests.browser.conftest import log_in, wait_until

CONFIG = PhantomConfig(width=320, height=240, n_frames=16, pixel_spacing_mm=0.125)
CROP_MM = 15.0

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True), pytest.mark.timeout(180)]


@pytest.fixture
def annotated_clip(tmp_path, monkeypatch, celery_worker_process, settings):
    """An annotator, and a phantom clip uploaded with its spacing and extracted here; a real worker propagates."""
    settings.MEDIA_ROOT = celery_worker_process.media_root
    monkeypatch.setattr(services, "_queue_extraction", lambda clip_id: None)
    user = UserFactory(username="anna", role="annotator")
    phantom = generate_clip("control", 11, CONFIG)
    path = write_video(phantom, tmp_path / "wrist.mp4")
    clip = services.clip_upload(hand=make_hand(), upload=SimpleUploadedFile("wrist.mp4", path.read_bytes()),
                                uploaded_by=user, pixel_spacing_mm=CONFIG.pixel_spacing_mm)
    services.clip_extract_frames(clip_id=clip.pk)
    clip.refresh_from_db()
    assert clip.extraction_status == "done"
    return user, clip, phantom


def _canvas_point(page, frame, x, y):
    """CSS pixels inside the canvas element for an image point of the frame."""
    box = page.locator("#frame-canvas").bounding_box()
    return {"x": x / frame.width * box["width"], "y": y / frame.height * box["height"]}


def _idle(page):
    page.wait_for_selector('#annotate[data-pending="0"]', state="attached")


@pytest.mark.worker
def test_annotate_clip_with_mouse_and_keyboard(live_server, page, annotated_clip, tmp_path):
    user, clip, phantom = annotated_clip
    frames = list(clip.frames.order_by("index"))
    n = len(frames)
    base = live_server.url

    # Sign in through the login form; it sends us on to the annotation page.
    log_in(page, base, user, f"/clips/{clip.pk}/annotate/")
    page.wait_for_selector('#annotate[data-ready="true"]')
    wait_until(page, "document.getElementById('frame-canvas').width > 0")
    assert page.locator("#count-total").inner_text() == str(n)
    assert page.locator("#strip > div").count() == n

    # Click the nerve on the first frame: a keyframe ROI centred there (shifted only to stay inside).
    first = frames[0]
    cx, cy = (float(v) for v in phantom.centers[first.index])
    page.locator("#frame-canvas").click(position=_canvas_point(page, first, cx, cy))
    page.wait_for_selector('#roi-info[data-status="keyframe"]')
    _idle(page)

    # Enter confirms it (and moves on to the next frame).
    page.keyboard.press("Enter")
    page.wait_for_selector('#strip > div[data-pos="0"][data-status="confirmed"]')
    _idle(page)
    assert page.locator("#frame-label").inner_text() == f"Frame 2 / {n}"

    rois = page.request.get(f"{base}/api/annotations/?frame__clip={clip.pk}&mine=1").json()
    assert len(rois) == 1 and rois[0]["frame"] == first.pk and rois[0]["status"] == "confirmed"
    expected = crop_box((cx, cy), size_mm=CROP_MM, spacing_mm=clip.spacing_mm, frame_size=(first.width, first.height))
    assert (rois[0]["w"], rois[0]["h"]) == expected[2:] == (120, 120)
    assert abs(rois[0]["x"] - expected[0]) <= 2 and abs(rois[0]["y"] - expected[1]) <= 2

    # A second keyframe on the last frame (End), then P proposes the frames between and Shift+C confirms them.
    page.keyboard.press("End")
    last = frames[-1]
    lx, ly = (float(v) for v in phantom.centers[last.index])
    page.locator("#frame-canvas").click(position=_canvas_point(page, last, lx, ly))
    page.wait_for_selector('#roi-info[data-status="keyframe"]')
    page.keyboard.press("p")  # queued for the worker; the page polls the job and loads its proposals
    page.wait_for_selector('#annotate[data-propagating="true"]', state="attached")
    page.wait_for_selector(f'#annotate[data-proposed="{n - 2}"]', timeout=60_000)
    _idle(page)
    assert page.locator("#annotate").get_attribute("data-job-status") == "done"
    assert "Proposed the ROI on" in page.locator("#status-line").inner_text()
    page.wait_for_selector('#annotate[data-propagating="false"]', state="attached")
    assert page.locator("#btn-propagate").get_attribute("aria-busy") is None
    page.keyboard.press("Shift+C")
    page.wait_for_selector(f'#annotate[data-confirmed="{n}"][data-proposed="0"]')
    _idle(page)
    assert page.locator("#count-confirmed").inner_text() == str(n)
    assert page.locator('#strip > div[data-status="confirmed"]').count() == n - 1  # the last is still a keyframe

    rois = RoiAnnotation.objects.filter(frame__clip=clip, annotator=user)
    assert rois.count() == n and {roi.frame_id for roi in rois} == {f.pk for f in frames}
    assert all(roi.is_confirmed for roi in rois)
    assert rois.filter(status="confirmed").count() == n - 1 and rois.get(frame=last).status == "keyframe"

    # Someone else's save (here: another session) bumps the version: the page's next move gets a 409,
    # shows why, and reloads the stored ROI instead of overwriting it.
    stored = rois.get(frame=last)
    annotation_services.roi_set_status(roi=stored, status="confirmed", expected_version=stored.version)
    stored.refresh_from_db()
    page.locator("#frame-canvas").click(position=_canvas_point(page, last, lx - 30, ly))
    banner = page.locator("#banner.stale")
    banner.wait_for(state="visible")
    assert "changed" in banner.inner_text() and "Not saved" in banner.inner_text()
    page.wait_for_selector('#roi-info[data-status="confirmed"]')
    assert f"version {stored.version}" in page.locator("#roi-info").inner_text()
    after = RoiAnnotation.objects.get(pk=stored.pk)
    assert (after.x, after.y, after.version) == (stored.x, stored.y, stored.version)

    # Outline mode: trace the nerve with clicks, Enter closes it and shows the area from the server.
    page.keyboard.press("Escape")  # dismiss the banner
    page.keyboard.press("o")
    assert page.locator("#annotate").get_attribute("data-mode") == "outline"
    for dx, dy in ((-14, -6), (0, -9), (14, -6), (16, 4), (0, 9), (-16, 4)):
        page.locator("#frame-canvas").click(position=_canvas_point(page, last, lx + dx, ly + dy))
    page.keyboard.press("Enter")
    page.wait_for_selector("#outline-rows tr[data-outline-id]")
    _idle(page)
    outline = NerveOutline.objects.get(frame=last, annotator=user)
    assert len(outline.points) == 6 and 5 < outline.area_mm2 < 15
    assert f"{outline.area_mm2:.1f} mm²" in page.locator("#status-line").inner_text()

    # The help dialog lists the shortcuts.
    page.keyboard.press("?")
    page.wait_for_selector("#help-dialog[open]")
    assert "Shift+C" in page.locator("#help-dialog").inner_text()
    page.keyboard.press("?")
    page.wait_for_selector("#help-dialog:not([open])", state="attached")

    page.keyboard.press("o")  # back to ROI mode for the picture
    page.keyboard.press("Home")
    _idle(page)
    page.wait_for_timeout(300)  # let the buttons' CSS transitions finish
    screenshot = tmp_path / "annotate.png"
    page.screenshot(path=str(screenshot), full_page=True)
    assert screenshot.stat().st_size > 10_000


def test_clip_page_follows_the_extraction_until_done(live_server, page, tmp_path, monkeypatch):
    monkeypatch.setattr(services, "_queue_extraction", lambda clip_id: None)
    user = UserFactory(username="cora", role="coordinator")
    small = PhantomConfig(width=160, height=120, n_frames=6, pixel_spacing_mm=0.25)
    path = write_video(generate_clip("cts", 12, small), tmp_path / "c.mp4")
    clip = services.clip_upload(hand=make_hand(), upload=SimpleUploadedFile("c.mp4", path.read_bytes()),
                                uploaded_by=user, pixel_spacing_mm=0.25)

    log_in(page, live_server.url, user, f"/clips/{clip.pk}/")
    progress = f"#clip-progress-{clip.pk}"
    page.wait_for_selector(f'{progress}[data-status="queued"][hx-trigger="every 1s"]')
    services.clip_extract_frames(clip_id=clip.pk)  # as the worker would; the page polls and sees it finish
    page.wait_for_selector(f'{progress}[data-status="done"]', timeout=10_000)
    assert page.locator(progress).get_attribute("hx-trigger") is None  # polling stopped
    assert "6 / 6 frames" in page.locator(progress).inner_text()
