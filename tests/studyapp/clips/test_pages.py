"""The clip web pages: every role against every page, upload through the form, progress, calibration."""

import json
import re

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.template.loader import render_to_string
from django.test import RequestFactory

from mlworker.phantom import PhantomConfig, generate_clip, write_video
from studyapp.annotations import services as annotation_services
from studyapp.clips import services
from studyapp.clips.models import Clip
from tests.conftest import assert_web_access
from tests.factories import UserFactory, make_hand

pytestmark = pytest.mark.django_db

ROLES = ["coordinator", "annotator", "pi", "admin", "norole", "anonymous"]
EVERYONE = {"coordinator", "annotator", "pi", "admin"}
UPLOADERS = {"coordinator", "annotator", "admin"}
ANNOTATORS = {"annotator", "admin"}
SMALL = PhantomConfig(width=160, height=120, n_frames=12, pixel_spacing_mm=0.25)


@pytest.fixture(autouse=True)
def queued(monkeypatch):
    """Nothing goes to a broker: extraction is queued into this list and run by the tests themselves."""
    calls = []
    monkeypatch.setattr(services, "_queue_extraction", calls.append)
    return calls


def _video(tmp_path_factory, seed):
    path = write_video(generate_clip("control", seed, SMALL), tmp_path_factory.mktemp("phantom") / "clip.mp4")
    return path.read_bytes()


@pytest.fixture(scope="module")
def video_bytes(tmp_path_factory):
    return _video(tmp_path_factory, 5)


@pytest.fixture(scope="module")
def other_video_bytes(tmp_path_factory):
    return _video(tmp_path_factory, 6)


@pytest.fixture
def hand():
    return make_hand()


def make_clip(hand, content, *, spacing=0.25, extract=True, user=None, name="clip.mp4"):
    clip = services.clip_upload(hand=hand, upload=SimpleUploadedFile(name, content, content_type="video/mp4"),
                                uploaded_by=user, pixel_spacing_mm=spacing)
    if extract:
        services.clip_extract_frames(clip_id=clip.pk)
    clip.refresh_from_db()
    return clip


@pytest.fixture
def clip(hand, users, video_bytes):
    return make_clip(hand, video_bytes, user=users["annotator"])


def stored_clip_files():
    root = settings.MEDIA_ROOT / "clips"
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


# ---------------------------------------------------------------- every role against every page

def _upload_data(other_video_bytes):
    return {"file": SimpleUploadedFile("other.mp4", other_video_bytes, content_type="video/mp4"),
            "pixel_spacing_mm": "0.25"}


WEB = [
    # (method, url, data, roles allowed)
    ("get", lambda c: f"/clips/hands/{c.hand_id}/upload/", None, UPLOADERS),
    ("post", lambda c: f"/clips/hands/{c.hand_id}/upload/", _upload_data, UPLOADERS),
    ("get", lambda c: f"/clips/{c.pk}/", None, EVERYONE),
    ("get", lambda c: f"/clips/{c.pk}/progress/", None, EVERYONE),
    ("post", lambda c: f"/clips/{c.pk}/spacing/", lambda v: {"pixel_spacing_mm": "0.2"}, UPLOADERS),
    ("post", lambda c: f"/clips/{c.pk}/retry/", lambda v: {}, UPLOADERS),
    ("get", lambda c: f"/clips/{c.pk}/annotate/", None, ANNOTATORS),
    ("get", lambda c: "/clips/agreement/", None, {"coordinator", "pi", "admin"}),
]
_IDS = [f"{m.upper()} {u(type('C', (), {'pk': 1, 'hand_id': 1}))}" for m, u, _, _ in WEB]


@pytest.mark.parametrize("method, url, data, allowed", WEB, ids=_IDS)
@pytest.mark.parametrize("role", ROLES)
def test_web_permissions(client, users, clip, other_video_bytes, role, method, url, data, allowed):
    if role != "anonymous":
        client.force_login(users[role])
    response = getattr(client, method)(url(clip), data(other_video_bytes) if data else {})
    assert_web_access(response, role, allowed)


# ---------------------------------------------------------------- upload

def test_upload_redirects_to_the_clip_page(client_for, hand, video_bytes, queued):
    client = client_for("annotator")
    response = client.post(f"/clips/hands/{hand.pk}/upload/", {
        "file": SimpleUploadedFile("wrist.mp4", video_bytes, content_type="video/mp4"),
        "pixel_spacing_mm": "0.25", "scanner_model": "Phantom X", "probe": "L18-4", "frequency_mhz": "18",
        "notes": "short axis"})
    clip = Clip.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/clips/{clip.pk}/"
    assert (clip.original_filename, clip.scanner_model, clip.probe, clip.frequency_mhz, clip.notes) == \
        ("wrist.mp4", "Phantom X", "L18-4", 18.0, "short axis")
    assert clip.spacing_mm == (0.25, 0.25) and clip.spacing_source == "entered"
    assert clip.extraction_status == "queued" and len(stored_clip_files()) == 1

    page = client.get(response["Location"])
    assert page.status_code == 200
    html = page.content.decode()
    assert "wrist.mp4" in html and "Queued" in html and 'hx-trigger="every 1s"' in html
    assert "Uploaded wrist.mp4" in html  # the success message


def test_refused_file_shows_the_message_next_to_the_field_and_keeps_the_rest(client_for, hand):
    response = client_for("coordinator").post(f"/clips/hands/{hand.pk}/upload/", {
        "file": SimpleUploadedFile("clip.mp4", b"this is not a video at all" * 50, content_type="video/mp4"),
        "pixel_spacing_mm": "0.2", "scanner_model": "Scanner 9", "probe": "L12", "frequency_mhz": "12.5",
        "notes": "typed notes"})
    assert response.status_code == 400
    html = response.content.decode()
    errors = re.search(r'<ul class="errorlist" id="id_file_errors">(.*?)</ul>', html, re.S)
    assert errors and errors.group(1).strip(), html
    form = response.context["form"]
    assert form.errors["file"] and set(form.errors) == {"file"}
    for value in ('value="0.2"', 'value="Scanner 9"', 'value="L12"', 'value="12.5"', "typed notes"):
        assert value in html
    assert Clip.objects.count() == 0 and stored_clip_files() == []


def test_refused_spacing_and_duplicate(client_for, clip, hand, video_bytes, other_video_bytes):
    client = client_for("annotator")
    response = client.post(f"/clips/hands/{hand.pk}/upload/", {
        "file": SimpleUploadedFile("b.mp4", other_video_bytes), "pixel_spacing_mm": "9"})
    assert response.status_code == 400
    assert "between 0.001 and 5" in " ".join(response.context["form"].errors["pixel_spacing_mm"])
    assert 'id="id_pixel_spacing_mm_errors"' in response.content.decode()

    response = client.post(f"/clips/hands/{hand.pk}/upload/", {"file": SimpleUploadedFile("again.mp4", video_bytes)})
    assert response.status_code == 400
    assert f"already uploaded as clip {clip.pk}" in " ".join(response.context["form"].errors["file"])
    assert Clip.objects.count() == 1 and len(stored_clip_files()) == 1


def test_empty_and_missing_file(client_for, hand):
    client = client_for("annotator")
    response = client.post(f"/clips/hands/{hand.pk}/upload/", {"file": SimpleUploadedFile("x.mp4", b"")})
    assert response.status_code == 400 and response.context["form"].errors["file"]
    response = client.post(f"/clips/hands/{hand.pk}/upload/", {"scanner_model": "kept"})
    assert response.status_code == 400 and response.context["form"].errors["file"]
    assert 'value="kept"' in response.content.decode()
    assert Clip.objects.count() == 0 and stored_clip_files() == []


def test_upload_page_for_unknown_hand_is_404(client_for):
    assert client_for("annotator").get("/clips/hands/999999/upload/").status_code == 404


# ---------------------------------------------------------------- progress

def test_progress_polls_while_queued_and_running_then_stops(client_for, hand, video_bytes):
    client = client_for("annotator")
    clip = make_clip(hand, video_bytes, extract=False)
    html = client.get(f"/clips/{clip.pk}/progress/").content.decode()
    assert 'hx-get="/clips/%d/progress/"' % clip.pk in html and 'hx-trigger="every 1s"' in html
    assert 'data-status="queued"' in html

    Clip.objects.filter(pk=clip.pk).update(extraction_status="running", extraction_done=5, extraction_total=12)
    html = client.get(f"/clips/{clip.pk}/progress/").content.decode()
    assert 'hx-trigger="every 1s"' in html and 'value="5" max="12"' in html and "5 / 12" in html

    Clip.objects.filter(pk=clip.pk).update(extraction_status="queued")
    services.clip_extract_frames(clip_id=clip.pk)
    html = client.get(f"/clips/{clip.pk}/progress/").content.decode()
    assert "hx-trigger" not in html and 'data-status="done"' in html and "12 / 12" in html
    assert f'href="/clips/{clip.pk}/annotate/"' in html

    compact = client.get(f"/clips/{clip.pk}/progress/?compact=1").content.decode()
    assert "compact" in compact and "hx-trigger" not in compact and "Annotate" in compact


def test_failed_extraction_shows_the_reason_and_retry(client_for, clip, queued, django_capture_on_commit_callbacks):
    Clip.objects.filter(pk=clip.pk).update(extraction_status="failed", extraction_error="The video stream is corrupt.")
    client = client_for("coordinator")
    html = client.get(f"/clips/{clip.pk}/").content.decode()
    assert "The video stream is corrupt." in html and f'action="/clips/{clip.pk}/retry/"' in html
    assert "hx-trigger" not in html
    assert "Retry" not in client_for("pi").get(f"/clips/{clip.pk}/progress/").content.decode()

    with django_capture_on_commit_callbacks(execute=True):
        response = client_for("coordinator").post(f"/clips/{clip.pk}/retry/")
    assert response.status_code == 302 and response["Location"] == f"/clips/{clip.pk}/"
    clip.refresh_from_db()
    assert clip.extraction_status == "queued" and clip.extraction_error == "" and queued == [clip.pk]

    response = client_for("coordinator").post(f"/clips/{clip.pk}/retry/", follow=True)  # not failed any more
    assert "Only a failed extraction, or one whose worker stopped, can be retried." in response.content.decode()


# ---------------------------------------------------------------- spacing

def test_clip_without_spacing_offers_calibration(client_for, hand, video_bytes):
    clip = make_clip(hand, video_bytes, spacing=None)
    assert clip.spacing_mm is None
    client = client_for("annotator")
    html = client.get(f"/clips/{clip.pk}/").content.decode()
    assert f'action="/clips/{clip.pk}/spacing/"' in html and "No pixel spacing yet" in html
    assert f'href="/clips/{clip.pk}/annotate/"' in html  # two-point calibration is on the annotate page
    assert f'action="/clips/{clip.pk}/spacing/"' not in client_for("pi").get(f"/clips/{clip.pk}/").content.decode()

    client = client_for("annotator")  # the same test client, signed in again
    response = client.post(f"/clips/{clip.pk}/spacing/", {"pixel_spacing_mm": "7"})
    assert response.status_code == 400
    html = response.content.decode()
    assert 'id="id_pixel_spacing_mm_errors"' in html and "between 0.001 and 5" in html and 'value="7"' in html
    clip.refresh_from_db()
    assert clip.spacing_mm is None

    response = client.post(f"/clips/{clip.pk}/spacing/", {"pixel_spacing_mm": "abc"})
    assert response.status_code == 400

    response = client.post(f"/clips/{clip.pk}/spacing/", {"pixel_spacing_mm": "0.125"})
    assert response.status_code == 302
    clip.refresh_from_db()
    assert clip.spacing_mm == (0.125, 0.125) and clip.spacing_source == "entered"
    html = client.get(f"/clips/{clip.pk}/").content.decode()
    assert f'action="/clips/{clip.pk}/spacing/"' not in html and "Entered at upload" in html


def test_detail_page_shows_metadata_and_annotation_counts(client_for, clip, users):
    frame = clip.frames.first()
    annotation_services.roi_save(frame=frame, annotator=users["annotator"], center_x=80, center_y=60)
    html = client_for("pi").get(f"/clips/{clip.pk}/").content.decode()
    assert "clip.mp4" in html and "160 × 120 px" in html and "0.25 × 0.25 mm/px" in html
    assert "<td>annot</td><td>1</td>" in html
    assert f'href="/clips/{clip.pk}/annotate/"' not in html  # PI may look, not annotate


# ---------------------------------------------------------------- annotate page

def test_annotate_page_passes_frames_and_settings_to_the_script(client_for, clip):
    response = client_for("annotator").get(f"/clips/{clip.pk}/annotate/")
    assert response.status_code == 200
    html = response.content.decode()
    config = json.loads(re.search(r'<script id="annotate-config" type="application/json">(.*?)</script>', html,
                                  re.S).group(1))
    frames = list(clip.frames.all())
    assert len(config["frames"]) == len(frames) == 12
    assert config["frames"][0] == {"id": frames[0].pk, "index": frames[0].index, "timestamp_s": frames[0].timestamp_s,
                                   "width": 160, "height": 120, "image_url": f"/clips/frames/{frames[0].pk}/image.png"}
    assert config["clipId"] == clip.pk and config["spacing"] == [0.25, 0.25] and config["cropSizeMm"] == 15
    assert config["user"] == "annot" and config["csrf"]
    assert config["api"] == {"annotations": "/api/annotations/", "outlines": "/api/outlines/",
                             "propagate": f"/api/clips/{clip.pk}/propagate/",
                             "confirmAll": f"/api/clips/{clip.pk}/confirm-all/",
                             "calibrate": f"/api/clips/{clip.pk}/calibrate/"}
    assert '<canvas id="frame-canvas"' in html and "js/annotate.js" in html and "css/annotate.css" in html
    assert "Shift+C" in html and "Propagate" in html  # the shortcuts are on the page
    assert client_for("annotator").get(config["frames"][0]["image_url"]).status_code == 200
    assert config["propagation"] is None
    # A propagation still queued or running when the page (re)loads: the page follows it.
    from studyapp.annotations import services as annotation_services
    from studyapp.annotations.models import RoiAnnotation

    user = RoiAnnotation._meta.get_field("annotator").related_model.objects.get(username="annot")
    annotation_services.roi_save(frame=frames[0], annotator=user, center_x=80, center_y=60)
    job = annotation_services.roi_propagate_queue(clip=clip, annotator=user)
    html = client_for("annotator").get(f"/clips/{clip.pk}/annotate/").content.decode()
    config = json.loads(re.search(r'<script id="annotate-config" type="application/json">(.*?)</script>', html,
                                  re.S).group(1))
    assert (config["propagation"]["id"], config["propagation"]["status"]) == (job.pk, "queued")
    assert config["propagation"]["url"] == f"/api/jobs/{job.pk}/"


def test_annotate_page_before_extraction(client_for, hand, video_bytes):
    clip = make_clip(hand, video_bytes, extract=False)
    html = client_for("annotator").get(f"/clips/{clip.pk}/annotate/").content.decode()
    assert "frame-canvas" not in html and "annotate-config" not in html and "not ready" in html


def test_annotate_page_without_spacing_shows_calibration(client_for, hand, video_bytes):
    clip = make_clip(hand, video_bytes, spacing=None)
    html = client_for("annotator").get(f"/clips/{clip.pk}/annotate/").content.decode()
    config = json.loads(re.search(r'<script id="annotate-config" type="application/json">(.*?)</script>', html,
                                  re.S).group(1))
    assert config["spacing"] is None and config["canCalibrate"] is True
    assert 'id="calib-form"' in html and 'id="calibration" hidden' not in html


# ---------------------------------------------------------------- hand partial

def _render_hand_clips(user, hand):
    request = RequestFactory().get("/")
    request.user = user
    return render_to_string("clips/_hand_clips.html", {"hand": hand}, request=request)


def test_hand_partial_lists_clips_with_status_and_upload_link(users, clip, hand, other_video_bytes):
    queued_clip = make_clip(hand, other_video_bytes, extract=False, name="second.mp4")
    html = _render_hand_clips(users["annotator"], hand)
    assert f'href="/clips/hands/{hand.pk}/upload/"' in html
    assert f'href="/clips/{clip.pk}/"' in html and f'href="/clips/{clip.pk}/annotate/"' in html
    assert "second.mp4" in html and f'hx-get="/clips/{queued_clip.pk}/progress/?compact=1"' in html
    pi_html = _render_hand_clips(users["pi"], hand)
    assert "upload/" not in pi_html and "annotate/" not in pi_html and "clip.mp4" in pi_html
    assert "hand-clips" not in _render_hand_clips(users["norole"], hand)


# ---------------------------------------------------------------- agreement

def test_agreement_page_without_data(client_for):
    html = client_for("pi").get("/clips/agreement/").content.decode()
    assert 'id="roi-empty"' in html and 'id="csa-empty"' in html and "at least two annotators" in html


def test_agreement_page_with_two_annotators(client_for, users, tmp_path_factory):
    other = UserFactory(username="second", role="annotator")
    raters = [users["annotator"], other]
    for seed, offset, wider in ((21, 0.0, 1), (22, 1.0, 2), (23, 2.5, 1)):
        clip = make_clip(make_hand(), _video(tmp_path_factory, seed))
        frames = list(clip.frames.all()[:3])
        for frame in frames:
            annotation_services.roi_save(frame=frame, annotator=raters[0], center_x=80, center_y=60)
            annotation_services.roi_save(frame=frame, annotator=raters[1], center_x=83, center_y=60)
        for rater, extra in ((raters[0], 0), (raters[1], wider)):  # the second traces wider: +16 px² = +1 mm² a px
            right = 82 + offset + extra
            annotation_services.outline_create(frame=frames[0], annotator=rater,
                                               points=[[70, 50], [right, 50], [right, 66], [70, 66]])
    response = client_for("coordinator").get("/clips/agreement/")
    assert response.status_code == 200
    html = response.content.decode()
    # Boxes of 60 px shifted by 3 px: IoU = 57 / 63.
    assert f'<span id="mean-iou">{57 / 63:.3f}</span>' in html and "annot vs second" in html
    assert 'id="per-clip"' in html and html.count("/clips/") >= 3
    assert 'id="icc-value"' in html and 'id="icc-ci"' in html and 'id="ba-bias"' in html and 'id="ba-loa"' in html
    ba = response.context["ba"]
    assert abs(ba["bias"]) == pytest.approx(4 / 3, abs=1e-6) and ba["n"] == 3
    # The Bland–Altman plot is the shared plotly figure of these very pairs, drawn by static/js/figures.js.
    [panel] = response.context["ba_panels"]  # two raters: one pair
    assert 'data-figure="figure-bland-altman"' in html and "vendor/plotly/plotly.min.js" in html
    assert panel.figure["data"][0]["x"] == ba["means"] and panel.figure["data"][0]["y"] == ba["differences"]
