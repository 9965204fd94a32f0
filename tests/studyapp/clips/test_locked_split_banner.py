"""The annotation page warns when the clip's hand is frozen in a locked split, naming the split, not its label."""

import re

import pytest

from studyapp.clips import services
from studyapp.experiments.models import Split, SplitMember
from tests.factories import make_clip, make_hand

pytestmark = pytest.mark.django_db


@pytest.fixture
def clip(tmp_path, monkeypatch):
    monkeypatch.setattr(services, "_queue_extraction", lambda clip_id: None)
    clip, _ = make_clip(tmp_path, hand=make_hand(eps={"dml_ms": 6.5, "sncv_m_s": 30.0}), n_frames=4)
    return clip


def _split(name, hand, *, subset="test", lock=True):
    split = Split.objects.create(name=name, manifest_hash="0" * 64)
    SplitMember.objects.create(split=split, hand=hand, subset=subset, label=1)
    if lock:
        split.status = Split.Status.LOCKED
        split.save()
    return split


def _banner(html: str) -> str:
    match = re.search(r'<div class="notice warn" id="locked-split-warning".*?</div>', html, re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", match.group(0))) if match else ""


def test_no_banner_without_a_locked_split(client_for, clip):
    _split("draft", clip.hand, lock=False)
    assert _banner(client_for("annotator").get(f"/clips/{clip.pk}/annotate/").content.decode()) == ""


def test_the_banner_names_every_locked_split_and_the_consequence(client_for, clip):
    _split("main", clip.hand, subset="test")
    _split("pilot", clip.hand, subset="train")
    _split("other hands", make_hand())
    banner = _banner(client_for("annotator").get(f"/clips/{clip.pk}/annotate/").content.decode())
    assert "2 locked splits" in banner and "main v1" in banner and "pilot v1" in banner
    assert "other hands" not in banner
    assert "blocks new training" in banner and "new split version" in banner
    for word in ("test", "train set", "training set", "label", "cts", "control"):
        assert not re.search(rf"\b{word}\b", banner, re.I), word


def test_the_clip_page_shows_it_too(client_for, clip):
    _split("main", clip.hand)
    banner = _banner(client_for("coordinator").get(f"/clips/{clip.pk}/").content.decode())
    assert "a locked split" in banner and "main v1" in banner
