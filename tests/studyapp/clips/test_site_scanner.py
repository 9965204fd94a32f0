"""Each clip's site and scanner: from real DICOM headers, entered for video, corrected later with an audit trail."""

import shutil

import pydicom
import pytest
from django.core.exceptions import ValidationError
from pydicom.data import get_testdata_file

from studyapp.clips import services
from studyapp.clips.models import Clip
from studyapp.sites import services as site_services
from tests.factories import UserFactory, make_hand, phantom_file, upload_file

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_broker(monkeypatch):
    monkeypatch.setattr(services, "_queue_extraction", lambda clip_id: None)


@pytest.fixture
def sites():
    return {
        "baptist": site_services.site_create(code="baptist", name="Baptist Medical Center",
                                             institution_names=["Baptist Med Ctr"]),
        "north": site_services.site_create(code="north", name="North Clinic", institution_names=["North Clinic"]),
    }


def example(tmp_path, name):
    """A copy of one of pydicom's example ultrasound files, as an upload."""
    path = tmp_path / name
    shutil.copy(get_testdata_file(name), path)
    return upload_file(path)


def test_site_and_scanner_from_a_real_dicom_header(tmp_path, sites):
    # "BAPTIST MED CTR" in the file, "Baptist Med Ctr" on the site: case and spaces don't matter.
    clip = services.clip_upload(hand=make_hand(), upload=example(tmp_path, "examples_jpeg2k.dcm"))
    clip.refresh_from_db()
    assert (clip.site, clip.site_source, clip.institution_name) == (sites["baptist"], "dicom", "BAPTIST MED CTR")
    assert (clip.scanner_manufacturer, clip.scanner_model) == ("G.E. Medical Systems", "LOGIQ 700")


def test_header_scanner_wins_over_typed_values(tmp_path, sites):
    clip = services.clip_upload(hand=make_hand(), upload=example(tmp_path, "examples_jpeg2k.dcm"),
                                scanner_manufacturer="Typed", scanner_model="Typed model")
    assert (clip.scanner_manufacturer, clip.scanner_model) == ("G.E. Medical Systems", "LOGIQ 700")


def test_dicom_from_an_unlisted_institution_takes_the_entered_site(tmp_path, sites):
    clip = services.clip_upload(hand=make_hand(), upload=example(tmp_path, "examples_palette.dcm"),
                                site=sites["north"])
    assert (clip.site, clip.site_source, clip.institution_name) == (sites["north"], "entered", "Philips Healthcare")
    assert (clip.scanner_manufacturer, clip.scanner_model) == ("Philips Medical Systems", "CX50")


def test_dicom_from_an_unlisted_institution_without_entered_site_is_stored_site_missing(tmp_path, sites):
    clip = services.clip_upload(hand=make_hand(), upload=example(tmp_path, "examples_palette.dcm"))
    assert clip.site is None and clip.site_source == "" and clip.institution_name == "Philips Healthcare"
    from studyapp.sites.selectors import clips_without_site

    assert list(clips_without_site()) == [clip]


def test_an_entered_site_contradicting_the_header_is_refused(tmp_path, sites):
    with pytest.raises(ValidationError) as raised:
        services.clip_upload(hand=make_hand(), upload=example(tmp_path, "examples_jpeg2k.dcm"), site=sites["north"])
    assert raised.value.error_dict["site"][0].code == "site_conflicts_with_dicom"
    assert "baptist" in raised.value.message_dict["site"][0]
    assert Clip.objects.count() == 0


def test_multiframe_phantom_with_a_site_header(tmp_path, sites):
    """A cine loop from a scanner at a listed site: the study's real case, header elements from the example."""
    path, _ = phantom_file(tmp_path, "north.dcm")
    ds = pydicom.dcmread(path)
    ds.InstitutionName, ds.Manufacturer, ds.ManufacturerModelName = "  north   CLINIC ", "Philips Medical Systems", "CX50"
    ds.save_as(path)
    clip = services.clip_upload(hand=make_hand(), upload=upload_file(path))
    assert (clip.site, clip.site_source, clip.frame_count) == (sites["north"], "dicom", 12)
    assert (clip.scanner_manufacturer, clip.scanner_model) == ("Philips Medical Systems", "CX50")


def test_video_takes_the_entered_site_and_scanner(tmp_path, sites):
    path, _ = phantom_file(tmp_path, "v.mp4")
    clip = services.clip_upload(hand=make_hand(), upload=upload_file(path), pixel_spacing_mm=0.25,
                                site=sites["north"], scanner_manufacturer=" Esaote ", scanner_model="MyLab")
    assert (clip.site, clip.site_source, clip.institution_name) == (sites["north"], "entered", "")
    assert (clip.scanner_manufacturer, clip.scanner_model) == ("Esaote", "MyLab")


def test_video_without_a_site_is_site_missing(tmp_path):
    path, _ = phantom_file(tmp_path, "v.mp4")
    clip = services.clip_upload(hand=make_hand(), upload=upload_file(path))
    assert clip.site is None and clip.site_source == "" and clip.scanner_manufacturer == ""


def test_entered_scanner_text_follows_the_detail_rules(tmp_path):
    path, _ = phantom_file(tmp_path, "v.mp4")
    with pytest.raises(ValidationError) as raised:
        services.clip_upload(hand=make_hand(), upload=upload_file(path), scanner_manufacturer="x" * 121)
    assert raised.value.error_dict["scanner_manufacturer"][0].code == "too_long"


@pytest.fixture
def video_clip(tmp_path, sites):
    path, _ = phantom_file(tmp_path, "v.mp4")
    return services.clip_upload(hand=make_hand(), upload=upload_file(path), site=sites["north"],
                                scanner_model="MyLab")


def test_correction_is_audited_with_user_and_reason(video_clip, sites):
    coordinator = UserFactory(username="coord", role="coordinator")
    clip = services.clip_site_correct(clip=video_clip, site=sites["baptist"], scanner_manufacturer="Esaote",
                                      scanner_model="MyLab 9", reason="Scanned at Baptist, per the log book",
                                      corrected_by=coordinator)
    clip.refresh_from_db()
    assert (clip.site, clip.site_source, clip.scanner_manufacturer, clip.scanner_model) == (
        sites["baptist"], "corrected", "Esaote", "MyLab 9")
    latest = clip.history.order_by("-history_id").first()
    assert latest.history_user == coordinator
    assert latest.history_change_reason == "Scanned at Baptist, per the log book"
    assert latest.site_id == sites["baptist"].pk and latest.site_source == "corrected"
    from studyapp.clips.selectors import clip_site_corrections

    [correction] = clip_site_corrections(clip)
    assert (correction.who, correction.site_code, correction.scanner) == ("coord", "baptist", "Esaote MyLab 9")


def test_correction_can_clear_the_site(video_clip):
    pi = UserFactory(username="pi", role="pi")
    clip = services.clip_site_correct(clip=video_clip, site=None, scanner_manufacturer="", scanner_model="MyLab",
                                      reason="Site unknown after all", corrected_by=pi)
    assert clip.site is None and clip.site_source == "corrected"


@pytest.mark.parametrize("reason, code", [("", "reason_required"), ("   ", "reason_required"),
                                          ("x" * 101, "too_long")])
def test_correction_needs_a_short_reason(video_clip, sites, reason, code):
    with pytest.raises(ValidationError) as raised:
        services.clip_site_correct(clip=video_clip, site=sites["baptist"], scanner_manufacturer="",
                                   scanner_model="MyLab", reason=reason,
                                   corrected_by=UserFactory(role="coordinator"))
    assert raised.value.error_dict["reason"][0].code == code
    video_clip.refresh_from_db()
    assert video_clip.site == sites["north"] and video_clip.site_source == "entered"


def test_correction_that_changes_nothing_is_refused(video_clip, sites):
    with pytest.raises(ValidationError) as raised:
        services.clip_site_correct(clip=video_clip, site=sites["north"], scanner_manufacturer="",
                                   scanner_model="MyLab", reason="check", corrected_by=UserFactory(role="pi"))
    assert raised.value.error_dict["site"][0].code == "unchanged"


def test_annotators_cannot_correct(video_clip, sites):
    with pytest.raises(ValidationError) as raised:
        services.clip_site_correct(clip=video_clip, site=sites["baptist"], scanner_manufacturer="",
                                   scanner_model="MyLab", reason="r", corrected_by=UserFactory(role="annotator"))
    assert raised.value.error_dict["site"][0].code == "not_allowed"


def test_correction_refuses_a_scanner_name_the_upload_would_refuse(video_clip, sites):
    with pytest.raises(ValidationError) as raised:
        services.clip_site_correct(clip=video_clip, site=sites["north"], scanner_manufacturer="",
                                   scanner_model="m" * 121, reason="r", corrected_by=UserFactory(role="pi"))
    assert raised.value.error_dict["scanner_model"][0].code == "too_long"


def test_correction_keeps_the_workers_progress_fields(video_clip, sites):
    Clip.objects.filter(pk=video_clip.pk).update(extraction_done=7, extraction_status="running")
    services.clip_site_correct(clip=video_clip, site=sites["baptist"], scanner_manufacturer="",
                               scanner_model="MyLab", reason="r", corrected_by=UserFactory(role="pi"))
    video_clip.refresh_from_db()
    assert (video_clip.extraction_done, video_clip.extraction_status) == (7, "running")


@pytest.mark.parametrize("field", ["scanner_manufacturer", "scanner_model"])
def test_scanner_is_not_editable_by_an_edit(video_clip, field):
    history = video_clip.history.count()
    with pytest.raises(ValidationError) as raised:
        services.clip_update(clip=video_clip, notes="n", **{field: "X"})
    assert raised.value.error_dict[field][0].code == "correction_only"
    video_clip.refresh_from_db()
    assert getattr(video_clip, field) != "X" and video_clip.notes == "" and video_clip.history.count() == history


# --- API -------------------------------------------------------------------------------------------------


def test_api_upload_with_site_and_the_clip_shows_it(api_for, tmp_path, sites):
    path, _ = phantom_file(tmp_path, "v.mp4")
    hand = make_hand()
    response = api_for("coordinator").post("/api/clips/", {
        "hand": hand.pk, "file": upload_file(path), "pixel_spacing_mm": 0.25, "site": sites["north"].pk,
        "scanner_manufacturer": "Esaote", "scanner_model": "MyLab"}, format="multipart")
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["site"], body["site_code"], body["site_source"], body["site_missing"]) == (
        sites["north"].pk, "north", "entered", False)
    assert (body["scanner_manufacturer"], body["scanner_model"]) == ("Esaote", "MyLab")
    unplaced, _ = phantom_file(tmp_path, "w.mp4", seed=2)
    api_for("coordinator").post("/api/clips/", {"hand": hand.pk, "file": upload_file(unplaced)}, format="multipart")

    def ids(**query):
        body = api_for("annotator").get("/api/clips/", query).json()
        return [row["id"] for row in (body["results"] if isinstance(body, dict) else body)]

    missing = Clip.objects.get(site__isnull=True).pk
    assert ids(site__isnull="true") == [missing]
    assert ids(site=sites["north"].pk) == [body["id"]]


def test_api_upload_of_a_conflicting_site_is_a_400(api_for, tmp_path, sites):
    response = api_for("coordinator").post("/api/clips/", {
        "hand": make_hand().pk, "file": example(tmp_path, "examples_jpeg2k.dcm"), "site": sites["north"].pk},
        format="multipart")
    assert response.status_code == 400 and "site" in response.json()


def test_api_correction(api_for, users, video_clip, sites):
    url = f"/api/clips/{video_clip.pk}/correct-site/"
    refused = api_for("annotator").post(url, {"site": sites["baptist"].pk, "reason": "r"}, format="json")
    assert refused.status_code == 403
    blank = api_for("pi").post(url, {"site": sites["baptist"].pk, "reason": ""}, format="json")
    assert blank.status_code == 400 and "reason" in blank.json()
    stale = api_for("pi").post(url, {"site": sites["baptist"].pk, "scanner_model": "MyLab", "reason": "log book",
                                     "expected_token": "0" * 16}, format="json")
    assert stale.status_code == 400 and "since you loaded it" in stale.json()["site"][0]
    token = api_for("pi").get(f"/api/clips/{video_clip.pk}/").json()["acquisition_token"]
    done = api_for("pi").post(url, {"site": sites["baptist"].pk, "scanner_model": "MyLab", "reason": "log book",
                                    "expected_token": token}, format="json")
    assert done.status_code == 200, done.content
    assert (done.json()["site_code"], done.json()["site_source"]) == ("baptist", "corrected")
    assert Clip.history.filter(id=video_clip.pk).latest("history_id").history_user == users["pi"]


@pytest.mark.parametrize("field", ["site", "scanner_manufacturer", "scanner_model"])
def test_api_edit_naming_another_site_or_scanner_is_refused_and_points_to_the_correction(api_for, video_clip,
                                                                                         sites, field):
    value = sites["baptist"].pk if field == "site" else "Other"
    before = Clip.objects.values().get(pk=video_clip.pk)
    history = video_clip.history.count()
    response = api_for("coordinator").patch(f"/api/clips/{video_clip.pk}/", {field: value, "notes": "n"},
                                            format="json")
    assert response.status_code == 400
    assert f"/api/clips/{video_clip.pk}/correct-site/" in response.json()[field][0]
    assert Clip.objects.values().get(pk=video_clip.pk) == before and video_clip.history.count() == history


def test_api_put_of_what_was_read_changes_only_the_edited_detail(api_for, video_clip):
    """A client that sends back the whole clip it read (site and scanner unchanged) may edit its notes."""
    api = api_for("coordinator")
    body = api.get(f"/api/clips/{video_clip.pk}/").json()
    response = api.put(f"/api/clips/{video_clip.pk}/", {**body, "notes": "second sweep"}, format="json")
    assert response.status_code == 200, response.content
    video_clip.refresh_from_db()
    assert (video_clip.notes, video_clip.site.code, video_clip.scanner_model) == ("second sweep", "north", "MyLab")
    assert video_clip.history.first().history_change_reason == "edited notes"


def test_api_put_back_of_a_header_scanner_name_stored_unnormalised_is_not_a_change(api_for, video_clip):
    """A DICOM header's text is stored as read (decomposed accents, a space left by the length cut)."""
    Clip.objects.filter(pk=video_clip.pk).update(scanner_manufacturer="Sieme\u0301ns ")
    api = api_for("coordinator")
    body = api.get(f"/api/clips/{video_clip.pk}/").json()
    response = api.put(f"/api/clips/{video_clip.pk}/", {**body, "notes": "checked"}, format="json")
    assert response.status_code == 200, response.content
    video_clip.refresh_from_db()
    assert (video_clip.scanner_manufacturer, video_clip.notes) == ("Sieme\u0301ns ", "checked")


# --- pages -----------------------------------------------------------------------------------------------


def test_upload_page_takes_a_site(client, users, tmp_path, sites):
    hand = make_hand()
    path, _ = phantom_file(tmp_path, "v.mp4")
    client.force_login(users["annotator"])
    page = client.get(f"/clips/hands/{hand.pk}/upload/").content.decode()
    assert f'<option value="{sites["north"].pk}">north · North Clinic</option>' in page
    response = client.post(f"/clips/hands/{hand.pk}/upload/", {
        "file": upload_file(path), "pixel_spacing_mm": "0.25", "site": sites["north"].pk,
        "scanner_manufacturer": "Esaote", "scanner_model": "MyLab"})
    assert response.status_code == 302, response.content[:2000]
    clip = Clip.objects.get()
    assert (clip.site, clip.site_source, clip.uploaded_by) == (sites["north"], "entered", users["annotator"])


def test_clip_page_shows_site_missing_and_corrects_it(client, users, tmp_path, sites):
    path, _ = phantom_file(tmp_path, "v.mp4")
    clip = services.clip_upload(hand=make_hand(), upload=upload_file(path))
    client.force_login(users["coordinator"])
    page = client.get(f"/clips/{clip.pk}/").content.decode()
    assert 'id="site-missing"' in page and f'action="/clips/{clip.pk}/site/"' in page
    refused = client.post(f"/clips/{clip.pk}/site/", {"site": sites["north"].pk, "reason": ""})
    assert refused.status_code == 400 and "reason" in refused.content.decode().lower()
    clip.refresh_from_db()
    assert clip.site is None
    saved = client.post(f"/clips/{clip.pk}/site/", {"site": sites["north"].pk, "scanner_manufacturer": "Esaote",
                                                    "reason": "Entered from the scan log"})
    assert saved.status_code == 302
    page = client.get(f"/clips/{clip.pk}/").content.decode()
    assert 'id="site-missing"' not in page and "Entered from the scan log" in page and "coord" in page


def test_annotator_sees_the_site_but_no_correction_form(client, users, video_clip):
    client.force_login(users["annotator"])
    page = client.get(f"/clips/{video_clip.pk}/").content.decode()
    assert "North Clinic" in page and f"/clips/{video_clip.pk}/site/" not in page
    assert client.post(f"/clips/{video_clip.pk}/site/", {"reason": "r"}).status_code == 403


def test_hand_page_lists_site_and_scanner(client, users, video_clip):
    client.force_login(users["coordinator"])
    page = client.get(f"/cohort/hands/{video_clip.hand_id}/").content.decode()
    assert "north" in page and "MyLab" in page


def test_a_correction_made_on_values_corrected_meanwhile_is_refused(video_clip, sites):
    loaded = services.acquisition_token(video_clip)
    first = UserFactory(role="coordinator")
    services.clip_site_correct(clip=video_clip, site=sites["baptist"], scanner_manufacturer="", scanner_model="MyLab",
                               reason="first", corrected_by=first, expected_token=loaded)
    with pytest.raises(ValidationError) as raised:
        services.clip_site_correct(clip=video_clip, site=None, scanner_manufacturer="", scanner_model="MyLab",
                                   reason="second, on the old page", corrected_by=UserFactory(role="pi"),
                                   expected_token=loaded)
    assert raised.value.error_dict["site"][0].code == "stale_version" and "baptist" in raised.value.messages[0]
    video_clip.refresh_from_db()
    assert video_clip.site == sites["baptist"]


def test_the_page_refuses_a_stale_correction_then_applies_it_on_resave(client, users, video_clip, sites):
    client.force_login(users["pi"])
    page = client.get(f"/clips/{video_clip.pk}/").content.decode()
    loaded = services.acquisition_token(video_clip)
    assert f'value="{loaded}"' in page
    services.clip_site_correct(clip=video_clip, site=None, scanner_manufacturer="", scanner_model="MyLab",
                               reason="meanwhile", corrected_by=users["coordinator"])
    form = {"site": sites["baptist"].pk, "scanner_model": "MyLab", "reason": "mine", "expected_token": loaded}
    stale = client.post(f"/clips/{video_clip.pk}/site/", form)
    assert stale.status_code == 400 and "since you loaded it" in stale.content.decode()
    fresh = services.acquisition_token(Clip.objects.get(pk=video_clip.pk))
    assert f'value="{fresh}"' in stale.content.decode()
    assert client.post(f"/clips/{video_clip.pk}/site/", {**form, "expected_token": fresh}).status_code == 302
    video_clip.refresh_from_db()
    assert video_clip.site == sites["baptist"]
