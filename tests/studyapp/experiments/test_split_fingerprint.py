"""A locked split is checked by a fingerprint of its inputs: every change that alters the manifest is detected,
and an unchanged split is answered without building its entries (nor decoding the locked manifest)."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from studyapp.annotations.models import RoiAdjudication, RoiAnnotation
from studyapp.clips.models import Clip, Frame
from studyapp.cohort.models import Hand, Participant
from studyapp.experiments import datasets, selectors, services
from studyapp.experiments.models import SplitFingerprint
from studyapp.protocol.models import StudySettings
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def locked(small_study):
    return services.split_lock(split=services.split_create(name="s", test_per_group=2))


@pytest.fixture
def no_rebuild(monkeypatch):
    """Fail the test if a check builds the manifest's entries again."""
    def refuse(*args, **kwargs):
        raise AssertionError("the check rebuilt the manifest")

    monkeypatch.setattr(datasets, "load_annotations", refuse)
    monkeypatch.setattr(datasets, "manifest_for", refuse)


def _member(split):
    """A member hand, its first clip and frame, and the ROI that defines the frame's crop."""
    hand = split.members.order_by("hand_id").first().hand
    clip = hand.clips.order_by("pk").first()
    frame = clip.frames.order_by("index").first()
    entry = next(e for e in split.manifest if e["frame"] == frame.pk)
    roi = RoiAnnotation.objects.get(frame=frame, annotator_id=entry["annotator"], status__in=["confirmed", "keyframe"])
    return hand, clip, frame, roi


def _manifest_now(split):
    try:
        return datasets.manifest_hash(services._current_manifest(split))
    except datasets.NotReady as reason:
        return f"not ready: {reason}"


def test_an_unchanged_split_is_answered_from_the_fingerprint_alone(locked, api_for, client_for, no_rebuild):
    recorded = SplitFingerprint.objects.get(split=locked)
    assert recorded.manifest_hash == locked.manifest_hash and recorded.entries == len(locked.manifest)
    assert recorded.hands == datasets.manifest_hands(locked.manifest)
    with CaptureQueriesContext(connection) as queries:
        assert services.split_verify(locked) == []
    assert len(queries) <= 5
    assert api_for("pi").get(f"/api/splits/{locked.pk}/check/").json()["ok"] is True
    page = client_for("pi").get(f"/experiments/splits/{locked.pk}/")
    assert page.status_code == 200 and f"({len(locked.manifest)} crops)" in page.content.decode()


def test_the_fingerprint_covers_every_field_of_the_manifest(locked):
    for entry in locked.manifest:  # external splits' entries add "site" and "scanner" (test_external_splits)
        assert set(entry) <= datasets.FINGERPRINTED_ENTRY_KEYS, (
            "manifest entries changed: hash the new field's columns in datasets._fingerprint_sql, add a change "
            "of it to CHANGES below and bump datasets.FINGERPRINT_VERSION")


def _second_rater_on(frames, *, dx=5):
    """Another rater's confirmed ROIs (boxes shifted by dx) on these frames."""
    other = UserFactory(username="second-rater", role="annotator")
    for frame in frames:
        roi = RoiAnnotation.objects.filter(frame=frame, status="confirmed").first()
        RoiAnnotation.objects.create(frame=frame, annotator=other, x=roi.x + dx, y=roi.y, w=roi.w, h=roi.h,
                                     status="confirmed")
    return other


def _adjudicate_box(split):
    _, _, frame, roi = _member(split)
    RoiAdjudication.objects.create(frame=frame, chosen_annotator=None, x=roi.x + 2, y=roi.y, w=roi.w, h=roi.h,
                                   decided_by=UserFactory(username="pi-adjudicator", role="pi"))


def _adjudicate_other_rater(split):
    hand, clip, frame, _ = _member(split)
    other = _second_rater_on([frame])
    RoiAdjudication.objects.create(frame=frame, chosen_annotator=other,
                                   decided_by=UserFactory(username="pi-adjudicator", role="pi"))


def _name_the_second_rater(split):
    _, clip, _, _ = _member(split)
    other = _second_rater_on(clip.frames.all())
    StudySettings.objects.filter(pk=StudySettings.current().pk).update(
        primary_rater_rule=StudySettings.PrimaryRater.NAMED, primary_rater=other)


def _second_rater_becomes_primary(split):
    _, clip, _, _ = _member(split)
    _second_rater_on(clip.frames.all())
    # One ROI fewer for the first rater on this clip: the second now has the most.
    RoiAnnotation.objects.filter(frame__clip=clip).exclude(annotator__username="second-rater").order_by(
        "-frame__index").first().delete()


def _add_clip(split):
    hand, clip, _, _ = _member(split)
    other_hand = split.members.order_by("hand_id").last().hand
    Clip.objects.filter(pk=other_hand.clips.first().pk).update(hand=hand)


def _move_participant(split):
    hand, _, _, _ = _member(split)
    participant = Participant.objects.get(pk=hand.participant_id)
    participant.pk, participant.study_code = None, participant.study_code + "-moved"
    participant.save()
    Hand.objects.filter(pk=hand.pk).update(participant=participant)


# Each kind of change the manifest depends on, written straight to the tables (as any write path could).
CHANGES = {
    "roi moved": lambda s: RoiAnnotation.objects.filter(pk=_member(s)[3].pk).update(x=_member(s)[3].x + 1),
    "roi resized": lambda s: RoiAnnotation.objects.filter(pk=_member(s)[3].pk).update(h=_member(s)[3].h + 1),
    "roi unconfirmed": lambda s: RoiAnnotation.objects.filter(pk=_member(s)[3].pk).update(status="proposed"),
    "roi deleted": lambda s: RoiAnnotation.objects.filter(pk=_member(s)[3].pk).delete(),
    "adjudicated to a third box": _adjudicate_box,
    "adjudicated to another rater": _adjudicate_other_rater,
    "primary rater named": _name_the_second_rater,
    "primary rater by count": _second_rater_becomes_primary,
    "frame re-hashed": lambda s: Frame.objects.filter(pk=_member(s)[2].pk).update(sha256="0" * 64),
    "frame image renamed": lambda s: Frame.objects.filter(pk=_member(s)[2].pk).update(image="frames/other.png"),
    "frame renumbered": lambda s: Frame.objects.filter(pk=_member(s)[2].pk).update(index=999),
    "frame deleted": lambda s: Frame.objects.filter(pk=_member(s)[2].pk).delete(),
    "clip re-hashed": lambda s: Clip.objects.filter(pk=_member(s)[1].pk).update(sha256="f" * 64),
    "clip extraction again": lambda s: Clip.objects.filter(pk=_member(s)[1].pk).update(extraction_status="running"),
    "clip added to the hand": _add_clip,
    "clip taken from the hand": lambda s: Clip.objects.filter(pk=_member(s)[1].pk).update(
        hand=Hand.objects.exclude(pk=_member(s)[0].pk).first()),
    "hand relabelled": lambda s: Hand.objects.filter(pk=_member(s)[0].pk).update(
        group="control" if _member(s)[0].group == "cts" else "cts"),
    "hand excluded": lambda s: Hand.objects.filter(pk=_member(s)[0].pk).update(exclusion_reason="other"),
    "hand of another participant": _move_participant,
}


@pytest.mark.parametrize("change", CHANGES)
def test_every_change_that_alters_the_manifest_is_detected(locked, change):
    before = services._inputs_fingerprints({locked.pk: [(m.hand_id, m.subset) for m in locked.members.all()]})
    assert before[locked.pk] == SplitFingerprint.objects.get(split=locked).inputs_sha256
    hand = _member(locked)[0]
    CHANGES[change](locked)
    assert _manifest_now(locked) != locked.manifest_hash  # the change is one the manifest shows
    after = services._inputs_fingerprints({locked.pk: [(m.hand_id, m.subset) for m in locked.members.all()]})
    assert after[locked.pk] != before[locked.pk]
    problems = services.split_verify(locked)
    hand.refresh_from_db()
    assert problems and ("no longer ready" in problems[0] or str(hand) in problems[0]), problems
    assert SplitFingerprint.objects.get(split=locked).inputs_sha256 == before[locked.pk]  # not recorded


def test_a_change_that_leaves_the_manifest_as_it_was_is_compared_once_then_answered_quickly(locked, monkeypatch):
    _, clip, _, _ = _member(locked)
    _second_rater_on(list(clip.frames.all())[:2])  # fewer ROIs than the primary rater: the crops stay hers
    assert _manifest_now(locked) == locked.manifest_hash
    recorded = SplitFingerprint.objects.get(split=locked).inputs_sha256
    assert services.split_verify(locked) == []  # compared in full, and the new fingerprint recorded
    assert SplitFingerprint.objects.get(split=locked).inputs_sha256 != recorded
    monkeypatch.setattr(datasets, "load_annotations", lambda *a, **k: pytest.fail("rebuilt"))
    assert services.split_verify(locked) == []


def test_data_outside_the_split_leave_its_fingerprint_as_it_was(small_study, request):
    locked = services.split_lock(split=services.split_create(name="s", test_per_group=2, train_per_group=3))
    request.getfixturevalue("no_rebuild")
    outside = Hand.objects.exclude(pk__in=locked.members.values("hand_id"))
    RoiAnnotation.objects.filter(frame__clip__hand__in=outside).update(x=0)
    assert RoiAnnotation.objects.filter(frame__clip__hand__in=outside).exists()
    Hand.objects.filter(pk__in=outside).update(exclusion_reason="other")
    assert services.split_verify(locked) == []


@pytest.mark.parametrize("write", ["roi moved", "hand relabelled"])
def test_a_write_while_the_manifest_is_built_is_not_recorded_as_checked(locked, monkeypatch, write):
    SplitFingerprint.objects.filter(split=locked).delete()  # as for a split locked before fingerprints
    load = datasets.load_annotations

    def load_then_write(hand_ids):
        loaded = load(hand_ids)
        CHANGES[write](locked)  # lands after the hands and their rows were read
        return loaded

    monkeypatch.setattr(datasets, "load_annotations", load_then_write)
    assert services.split_verify(locked) == []  # the rows it read still gave the locked manifest
    assert not SplitFingerprint.objects.filter(split=locked).exists()
    monkeypatch.setattr(datasets, "load_annotations", load)
    assert services.split_verify(locked)  # the next check compares in full and finds the change


def test_a_split_locked_before_fingerprints_is_compared_once(locked, monkeypatch):
    SplitFingerprint.objects.filter(split=locked).delete()
    assert selectors.manifest_summary(locked) == {"entries": len(locked.manifest),
                                                  "hands": datasets.manifest_hands(locked.manifest)}
    assert services.split_verify(locked) == []
    assert SplitFingerprint.objects.get(split=locked).hands == datasets.manifest_hands(locked.manifest)
    monkeypatch.setattr(datasets, "load_annotations", lambda *a, **k: pytest.fail("rebuilt"))
    assert services.split_verify(locked) == []


@pytest.mark.parametrize("seed", range(6))
def test_launch_estimate_counts_from_the_summary_equal_the_manifest_split(locked, seed):
    fit, val, test = services.fit_val_test(locked.manifest, seed=seed)
    summary = selectors.manifest_summary(locked)
    assert services.fit_val_test_sizes(summary["hands"], seed=seed) == (len(fit), len(val), len(test))
    estimate = selectors.launch_estimates(locked, models=["squeezenet1_1"], epochs=3, input_size=64, seed=seed)
    assert (estimate["crops"], estimate["val_crops"]) == (len(fit), len(val))
