import pytest
from django.core.exceptions import ValidationError

from studyapp.annotations.models import RoiAnnotation
from studyapp.cohort import services as cohort_services
from studyapp.cohort.models import Hand
from studyapp.experiments import services
from studyapp.experiments.models import Experiment, Split, SplitLocked, SplitMember

pytestmark = pytest.mark.django_db


def test_pi_creates_a_stratified_participant_level_split(api_for, small_study):
    cohort_services.hand_update(hand=Hand.objects.first(), exclusion_reason="prior_wrist_surgery")
    response = api_for("pi").post("/api/splits/", {"name": "main", "seed": 3, "test_per_group": 2,
                                                   "train_per_group": 5}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["counts"] == {"train": {"control": 5, "cts": 5}, "test": {"control": 2, "cts": 2}}
    assert body["status"] == "draft" and body["version"] == 1
    reasons = {entry["reason"] for entry in body["left_out"]}
    assert any(r.startswith("excluded") for r in reasons) and "beyond the requested train/test counts" in reasons
    sides = {}
    for member in body["members"]:
        sides.setdefault(member["participant"], set()).add(member["subset"])
    assert all(len(s) == 1 for s in sides.values())


def test_unannotated_hands_are_left_out_with_the_reason(small_study):
    hand = Hand.objects.last()
    RoiAnnotation.objects.filter(frame__clip__hand=hand).first().delete()
    split = services.split_create(name="s", test_per_group=2, train_per_group=None)
    assert not split.members.filter(hand=hand).exists()
    assert any(e["hand"] == hand.pk and "1 of 6 frames have no confirmed ROI" in e["reason"] for e in split.left_out)


def test_locking_freezes_the_split_in_the_data_layer(small_study):
    split = services.split_create(name="s", test_per_group=2)
    locked = services.split_lock(split=split)
    assert locked.manifest_hash and len(locked.manifest) == split.members.count() * 6
    entry = locked.manifest[0]
    assert set(entry) >= {"hand", "frame", "box", "label", "subset", "image"}
    for attempt in (lambda: Split.objects.filter(pk=split.pk).update(seed=9),
                    lambda: Split.objects.filter(pk=split.pk).delete(),
                    lambda: Split.objects.get(pk=split.pk).delete(),
                    lambda: Split.objects.get(pk=split.pk).save(),
                    lambda: SplitMember.objects.filter(split=split).delete(),
                    lambda: SplitMember.objects.filter(split=split).update(subset="test"),
                    lambda: SplitMember.objects.filter(split=split).first().delete(),
                    lambda: SplitMember(split=split, hand=Hand.objects.first(), subset="train", label=0).save()):
        with pytest.raises(SplitLocked):
            attempt()
    assert Split.objects.get(pk=split.pk).members.count() == split.members.count()
    with pytest.raises(ValidationError):
        services.split_lock(split=split)


def test_locked_split_cannot_be_deleted_through_the_api(api_for, small_study):
    split = services.split_lock(split=services.split_create(name="s", test_per_group=2))
    response = api_for("pi").delete(f"/api/splits/{split.pk}/")
    assert response.status_code == 400 and "locked" in str(response.json())
    draft = services.split_create(name="d", test_per_group=2)
    assert api_for("pi").delete(f"/api/splits/{draft.pk}/").status_code == 204


def test_a_changed_roi_blocks_training_until_a_new_version(api_for, small_study):
    split = services.split_lock(split=services.split_create(name="s", test_per_group=2))
    assert api_for("pi").get(f"/api/splits/{split.pk}/check/").json() == {"ok": True, "problems": [], "files_checked": False}
    member = split.members.first()
    roi = RoiAnnotation.objects.filter(frame__clip__hand=member.hand).first()
    RoiAnnotation.objects.filter(pk=roi.pk).update(x=roi.x + 3)
    check = api_for("pi").get(f"/api/splits/{split.pk}/check/").json()
    assert check["ok"] is False and str(member.hand) in check["problems"][0]
    response = api_for("pi").post("/api/experiments/", {"split": split.pk, "random_init": True}, format="json")
    assert response.status_code == 400 and "blocked" in str(response.json())
    assert Experiment.objects.count() == 0
    newer = services.split_create(name="s", test_per_group=2, supersedes=split)
    assert newer.version == 2
    assert services.split_verify(services.split_lock(split=newer)) == []


def test_a_relabelled_hand_is_a_mismatch(small_study):
    split = services.split_lock(split=services.split_create(name="s", test_per_group=2))
    hand = split.members.first().hand
    cohort_services.hand_update(hand=hand, exclusion_reason="other", exclusion_detail="found prior surgery")
    assert services.split_verify(split)


def test_only_the_pi_locks_and_launches(api_for, small_study, monkeypatch):
    monkeypatch.setattr(services, "queue_run", lambda run_id: None)
    split = services.split_create(name="s", test_per_group=2)
    for role in ("coordinator", "annotator", "norole"):
        assert api_for(role).post(f"/api/splits/{split.pk}/lock/").status_code == 403
        assert api_for(role).post("/api/splits/", {"name": "x"}, format="json").status_code == 403
        assert api_for(role).get("/api/experiments/").status_code == 403
    assert api_for("pi").post(f"/api/splits/{split.pk}/lock/").status_code == 200
    for role in ("coordinator", "annotator", "norole"):
        assert api_for(role).post("/api/experiments/", {"split": split.pk}, format="json").status_code == 403
    response = api_for("pi").post("/api/experiments/", {"split": split.pk, "random_init": True,
                                                        "hyperparameters": {"epochs": 1}}, format="json")
    assert response.status_code == 201, response.content
    runs = response.json()["runs"]
    assert sorted(r["model_name"] for r in runs) == ["efficientnet_b0", "mobilenetv2_100", "squeezenet1_1"]
    assert all(r["random_init"] and r["config"]["pretrained"] is False and r["config"]["epochs"] == 1 for r in runs)


def test_bad_launch_input(api_for, small_study):
    split = services.split_lock(split=services.split_create(name="s", test_per_group=2))
    pi = api_for("pi")
    assert pi.post("/api/experiments/", {"split": split.pk, "models": ["resnet50"]}, format="json").status_code == 400
    assert pi.post("/api/experiments/", {"split": split.pk, "hyperparameters": {"lr": -1}},
                   format="json").status_code == 400
    draft = services.split_create(name="d", test_per_group=2)
    assert pi.post("/api/experiments/", {"split": draft.pk}, format="json").status_code == 400
    assert Experiment.objects.count() == 0


def test_the_bulk_manifest_equals_the_per_hand_entries(small_study):
    """Splits locked before the bulk loader keep their hash: the same entries, in the same order."""
    from studyapp.experiments import datasets

    split = services.split_create(name="s", test_per_group=2)
    members = [(m.hand, m.subset) for m in split.members.select_related("hand")]
    per_hand = []
    for hand, subset in sorted(members, key=lambda m: m[0].pk):
        per_hand += [{**e, "label": datasets.hand_label(hand), "subset": subset} for e in datasets.hand_entries(hand)]
    assert datasets.manifest_for(members) == per_hand and len(per_hand) == 16 * 6


def test_launch_refuses_learning_rates_outside_the_range(api_for, small_study):
    split = services.split_lock(split=services.split_create(name="s", test_per_group=2))
    pi = api_for("pi")
    for lr in (0.5, 1e-8):
        response = pi.post("/api/experiments/", {"split": split.pk, "hyperparameters": {"lr": lr}}, format="json")
        assert response.status_code == 400 and "lr" in response.json()["hyperparameters"], response.content
    with pytest.raises(ValidationError, match="lr must be between"):
        services.experiment_launch(split=split, hyperparameters={"lr": 2.0})
    assert Experiment.objects.count() == 0


def test_launch_refuses_a_split_whose_validation_cannot_hold_both_groups(api_for, small_study):
    """One training hand per group: nothing can be held out for validation and still be fitted on."""
    split = services.split_lock(split=services.split_create(name="s", test_per_group=2, train_per_group=1))
    response = api_for("pi").post("/api/experiments/", {"split": split.pk}, format="json")
    assert response.status_code == 400 and "fitting and validation need at least one each" in str(response.json())
    assert Experiment.objects.count() == 0
