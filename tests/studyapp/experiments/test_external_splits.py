"""External splits through the services and the API: created, locked with sites in the manifest, verified."""

import pytest
from django.core.exceptions import ValidationError

from studyapp.clips.models import Clip
from studyapp.experiments import services
from studyapp.experiments.models import Split

pytestmark = pytest.mark.django_db


def external_split(**kwargs):
    return services.split_create(name="ext", seed=1, test_per_group=1, train_per_group=None, kind="external",
                                 domain="site", train_domains=["A"], **kwargs)


def test_api_creates_an_external_split_by_site(api_for, two_site_study):
    response = api_for("pi").post("/api/splits/", {
        "name": "ext", "seed": 1, "test_per_group": 1, "train_per_group": None, "kind": "external",
        "domain": "site", "train_domains": ["A"]}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["kind"] == "external" and body["domain"] == "site" and body["train_domains"] == ["A"]
    assert body["counts"]["test"] == {"control": 1, "cts": 1}
    assert body["counts"]["external"]["control"] and body["counts"]["external"]["cts"]
    site_of = dict(Clip.objects.values_list("hand_id", "site__code"))
    for member in body["members"]:
        assert site_of[member["hand"]] == ("B" if member["subset"] == "external" else "A")


def test_locking_records_each_entry_site_and_scanner_and_a_site_correction_blocks_training(two_site_study):
    split = services.split_lock(split=external_split())
    assert split.is_external and split.is_locked
    assert {(e["subset"], e["site"]) for e in split.manifest} == {("train", "A"), ("test", "A"), ("external", "B")}
    assert {e["scanner"] for e in split.manifest if e["site"] == "A"} == {"Acme Sono 5"}
    assert services.split_verify(split) == []
    moved = next(e for e in split.manifest if e["subset"] == "external")
    Clip.objects.filter(pk=moved["clip"]).update(site=two_site_study[0])
    problems = services.split_verify(split)
    assert len(problems) == 1 and "changed since the split was locked" in problems[0]


@pytest.mark.parametrize("change", ["scanner", "site code"])
def test_a_scanner_correction_or_a_renamed_site_shows_in_the_fingerprint_and_the_check(two_site_study, monkeypatch,
                                                                                      change):
    from studyapp.experiments import datasets
    from studyapp.sites.models import Site

    split = services.split_lock(split=external_split())
    assert set(split.manifest[0]) == datasets.FINGERPRINTED_ENTRY_KEYS
    rebuilt = []
    real = datasets.load_annotations
    monkeypatch.setattr(datasets, "load_annotations", lambda *a, **k: rebuilt.append(1) or real(*a, **k))
    assert services.split_verify(split) == [] and not rebuilt  # unchanged: answered from the fingerprint
    if change == "scanner":
        Clip.objects.filter(pk=split.manifest[0]["clip"]).update(scanner_model="Other 9")
    else:
        Site.objects.filter(code="B").update(code="B2")
    problems = services.split_verify(split)
    expected = 1 if change == "scanner" else len({e["hand"] for e in split.manifest if e["site"] == "B"})
    assert rebuilt and len(problems) == expected and all("changed since the split was locked" in p for p in problems)


def test_an_internal_split_manifest_is_unchanged_by_sites(two_site_study):
    split = services.split_lock(split=services.split_create(name="int", test_per_group=2))
    assert "site" not in split.manifest[0] and split.kind == "internal"
    assert set(services.split_counts(split)) == {"train", "test"}


def test_hands_without_a_site_and_participants_on_both_sites_are_left_out(two_site_study):
    clips = list(Clip.objects.order_by("pk"))
    Clip.objects.filter(pk=clips[0].pk).update(site=None)
    split = external_split()
    reasons = {e["hand"]: e["reason"] for e in split.left_out}
    assert "no site recorded" in reasons[clips[0].hand_id]
    assert not split.members.filter(hand_id=clips[0].hand_id).exists()


def test_bad_external_requests_are_refused_with_a_code_and_save_nothing(two_site_study):
    cases = [({"domain": "site", "train_domains": ["Z"]}, "unknown_domain"),
             ({"domain": "site", "train_domains": []}, "no_train_domains"),
             ({"domain": "ward", "train_domains": ["A"]}, "bad_domain"),
             ({"domain": "site", "train_domains": ["A", "B"]}, "bad_split")]
    for kwargs, code in cases:
        with pytest.raises(ValidationError) as caught:
            services.split_create(name="x", test_per_group=1, kind="external", **kwargs)
        assert code in {e.code for errors in caught.value.error_dict.values() for e in errors}
    with pytest.raises(ValidationError, match="choose kind external"):
        services.split_create(name="x", test_per_group=1, domain="site", train_domains=["A"])
    with pytest.raises(ValidationError, match="internal or external"):
        services.split_create(name="x", test_per_group=1, kind="federated")
    assert not Split.objects.exists()


def test_external_by_scanner(two_site_study):
    split = services.split_create(name="scan", test_per_group=1, kind="external", domain="scanner",
                                  train_domains=["Boreal UX 9"])
    sites = dict(Clip.objects.values_list("hand_id", "site__code"))
    assert {sites[m.hand_id] for m in split.members.filter(subset="external")} == {"A"}
    assert {sites[m.hand_id] for m in split.members.exclude(subset="external")} == {"B"}


def test_the_split_pages_show_kind_and_domains(client_for, two_site_study):
    split = external_split()
    page = client_for("pi").get(f"/experiments/splits/{split.pk}/").content.decode()
    assert "External split: external by site" in page and "<strong>A</strong>" in page
    index = client_for("pi").get("/experiments/").content.decode()
    assert "external by site: trains on A" in index and "site B" in index
    response = client_for("pi").post("/experiments/", {"name": "form", "seed": 0, "test_per_group": 1,
                                                       "kind": "external", "domain": "site", "train_domains": ["B"]})
    assert response.status_code == 302
    assert Split.objects.get(name="form").train_domains == ["B"]
