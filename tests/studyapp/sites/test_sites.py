"""Sites are the PI's study data: services, API and pages; versioned, audited, kept while clips use them."""

import pytest
from django.core.exceptions import ValidationError

from studyapp.clips import services as clip_services
from studyapp.common.concurrency import StaleVersion
from studyapp.sites import services
from studyapp.sites.models import Site
from tests.factories import make_hand, phantom_file, upload_file

pytestmark = pytest.mark.django_db


@pytest.fixture
def north():
    return services.site_create(code="north", name="North Clinic", institution_names=["North Clinic"])


def test_create_cleans_names_and_records_history(users, north):
    site = services.site_create(code="south", name=" South Hospital ",
                                institution_names=["South  Hosp", "SOUTH HOSP", " "], history_user=users["pi"])
    assert (site.name, site.institution_names, site.version) == ("South Hospital", ["South Hosp"], 1)
    assert site.history.get().history_user == users["pi"]


def test_an_institution_name_means_one_site(north):
    with pytest.raises(ValidationError) as raised:
        services.site_create(code="other", name="Other", institution_names=["north  CLINIC"])
    assert raised.value.error_dict["institution_names"][0].code == "alias_taken"
    assert not Site.objects.filter(code="other").exists()
    # The site itself may keep and re-save its own names.
    assert services.site_update(site=north, institution_names=["North Clinic", "N. Clinic"]).version == 2


def test_duplicate_and_bad_codes_are_refused(north):
    with pytest.raises(ValidationError) as raised:
        services.site_create(code="north", name="Again")
    assert raised.value.error_dict["code"][0].code == "unique"
    with pytest.raises(ValidationError) as raised:
        services.site_create(code="has space", name="x")
    assert "code" in raised.value.error_dict


def test_stale_edit_is_refused_with_what_changed(users, north):
    services.site_update(site=north, expected_version=1, name="North Clinic Hospital", history_user=users["pi"])
    with pytest.raises(StaleVersion) as raised:
        services.site_update(site=north, expected_version=1, notes="typed on an old page")
    assert [c.field for c in raised.value.changes] == ["name"]
    north.refresh_from_db()
    assert (north.version, north.notes) == (2, "")


def test_a_site_used_by_clips_cannot_be_deleted(tmp_path, monkeypatch, north):
    monkeypatch.setattr(clip_services, "_queue_extraction", lambda clip_id: None)
    path, _ = phantom_file(tmp_path, "v.mp4")
    clip_services.clip_upload(hand=make_hand(), upload=upload_file(path), site=north)
    with pytest.raises(services.SiteInUse) as raised:
        services.site_delete(site=north)
    assert raised.value.code == "site_in_use" and "1 clip" in raised.value.messages[0]
    assert Site.objects.filter(pk=north.pk).exists()


def test_an_unused_site_is_deleted_and_its_history_kept(north):
    pk = north.pk
    services.site_delete(site=north)
    assert not Site.objects.exists() and Site.history.filter(id=pk, history_type="-").exists()


# --- API -------------------------------------------------------------------------------------------------


def test_everyone_who_uploads_reads_the_list(api_for, north):
    for role in ("coordinator", "annotator", "pi", "admin"):
        body = api_for(role).get("/api/sites/").json()
        rows = body["results"] if isinstance(body, dict) else body
        assert [r["code"] for r in rows] == ["north"] and rows[0]["clip_count"] == 0
    assert api_for("norole").get("/api/sites/").status_code == 403


def test_only_the_pi_changes_sites(api_for, north):
    payload = {"code": "south", "name": "South", "institution_names": ["South Hosp"]}
    for role in ("coordinator", "annotator"):
        assert api_for(role).post("/api/sites/", payload, format="json").status_code == 403
        assert api_for(role).patch(f"/api/sites/{north.pk}/", {"name": "x"}, format="json").status_code == 403
        assert api_for(role).delete(f"/api/sites/{north.pk}/").status_code == 403
    created = api_for("pi").post("/api/sites/", payload, format="json")
    assert created.status_code == 201, created.content
    assert created.json()["institution_names"] == ["South Hosp"] and created.json()["version"] == 1


def test_api_edit_with_versions(api_for, north):
    url = f"/api/sites/{north.pk}/"
    first = api_for("pi").patch(url, {"name": "North", "version": 1}, format="json")
    assert first.status_code == 200 and first.json()["version"] == 2 and first["ETag"] == '"2"'
    stale = api_for("pi").patch(url, {"notes": "old page", "version": 1}, format="json")
    assert stale.status_code == 409 and stale.json()["code"] == "stale_version"
    taken = api_for("pi").post("/api/sites/", {"code": "x", "name": "X", "institution_names": ["north clinic"]},
                               format="json")
    assert taken.status_code == 400 and "institution_names" in taken.json()


def test_api_delete_in_use_is_a_409(api_for, tmp_path, monkeypatch, north):
    monkeypatch.setattr(clip_services, "_queue_extraction", lambda clip_id: None)
    path, _ = phantom_file(tmp_path, "v.mp4")
    clip_services.clip_upload(hand=make_hand(), upload=upload_file(path), site=north)
    response = api_for("pi").delete(f"/api/sites/{north.pk}/")
    assert response.status_code == 409
    assert (response.json()["code"], response.json()["clip_count"]) == ("site_in_use", 1)
    unused = services.site_create(code="unused", name="Unused")
    assert api_for("pi").delete(f"/api/sites/{unused.pk}/").status_code == 204


# --- pages -----------------------------------------------------------------------------------------------


def test_pi_creates_and_edits_a_site_on_the_pages(client, users, north):
    client.force_login(users["pi"])
    assert "Add a site" in client.get("/sites/").content.decode()
    response = client.post("/sites/new/", {"code": "south", "name": "South Hospital",
                                           "institution_names": "South Hosp\nSOUTH HOSPITAL\n", "notes": ""})
    assert response.status_code == 302
    south = Site.objects.get(code="south")
    assert south.institution_names == ["South Hosp", "SOUTH HOSPITAL"]
    refused = client.post("/sites/new/", {"code": "dup", "name": "Dup", "institution_names": "north clinic"})
    assert refused.status_code == 400 and "already means site north" in refused.content.decode()
    edit = client.post(f"/sites/{south.pk}/edit/", {"code": "south", "name": "South", "version": 1,
                                                    "institution_names": "South Hosp"})
    assert edit.status_code == 302
    south.refresh_from_db()
    assert (south.name, south.institution_names, south.version) == ("South", ["South Hosp"], 2)
    stale = client.post(f"/sites/{south.pk}/edit/", {"code": "south", "name": "Old page", "version": 1,
                                                     "institution_names": "South Hosp"})
    assert stale.status_code == 400 and "Changed meanwhile" in stale.content.decode()


def test_coordinator_reads_but_cannot_manage(client, users, north):
    client.force_login(users["coordinator"])
    page = client.get("/sites/").content.decode()
    assert "North Clinic" in page and "Add a site" not in page and "/edit/" not in page
    assert client.get("/sites/new/").status_code == 403
    assert client.post(f"/sites/{north.pk}/delete/").status_code == 403


def test_site_list_shows_clips_without_a_site(client, users, tmp_path, monkeypatch):
    monkeypatch.setattr(clip_services, "_queue_extraction", lambda clip_id: None)
    path, _ = phantom_file(tmp_path, "v.mp4")
    clip = clip_services.clip_upload(hand=make_hand(), upload=upload_file(path))
    client.force_login(users["pi"])
    page = client.get("/sites/").content.decode()
    assert f"/clips/{clip.pk}/" in page and "Clips without a site" in page
