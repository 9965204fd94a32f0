"""The PI adjudicates rater disagreements; the decision is audited and the dataset's crops follow it."""

import pytest

from django.core.exceptions import ValidationError

from studyapp.annotations import selectors, services
from studyapp.annotations.models import CsaAdjudication, RoiAdjudication, RoiAnnotation
from studyapp.cohort import services as cohort_services
from studyapp.experiments import datasets
from studyapp.protocol.models import StudySettings
from tests.factories import RATER_FORM, UserFactory, make_clip, make_hand

pytestmark = pytest.mark.django_db


@pytest.fixture
def rated(tmp_path, users):
    """A control hand's 4-frame clip: rater A confirmed all frames at x=60, rater B three of them at x=100."""
    hand = make_hand(recruitment="healthy_volunteer")
    clip, _ = make_clip(tmp_path, hand=hand, n_frames=4)
    frames = list(clip.frames.all())
    a, b = users["annotator"], UserFactory(username="annot2", role="annotator")
    for frame in frames:
        services.roi_save(frame=frame, annotator=a, center_x=60, center_y=60, status="confirmed")
    for frame in frames[:3]:
        services.roi_save(frame=frame, annotator=b, center_x=100 if frame.index == 0 else 62, center_y=60,
                          status="confirmed")
    return {"hand": hand, "clip": clip, "frames": frames, "a": a, "b": b}


def boxes(clip):
    return {f: (r.annotator_id, r.box) for f, r in datasets.primary_rois(clip).items()}


def manifest(hand):
    return {e["frame"]: (e["annotator"], tuple(e["box"])) for e in datasets.manifest_for([(hand, "train")])}


def test_disagreements_below_the_iou_threshold(rated):
    found = selectors.roi_disagreements()
    assert [d.frame_id for d in found] == [rated["frames"][0].pk]  # 40 px apart; the others overlap well
    assert set(found[0].boxes) == {"annot", "annot2"} and found[0].min_iou < 0.5
    assert len(selectors.roi_disagreements(threshold=0.99)) == 3


def test_the_pi_keeps_the_second_raters_roi_and_the_crops_follow(client, users, rated):
    frame, b = rated["frames"][0], rated["b"]
    before = boxes(rated["clip"])
    assert before[frame.pk][0] == rated["a"].pk  # A has the most confirmed ROIs: primary
    client.force_login(users["pi"])
    page = client.get(f"/clips/review/frames/{frame.pk}/").content.decode()
    assert 'data-rater="annot"' in page and 'data-rater="annot2"' in page
    response = client.post(f"/clips/review/frames/{frame.pk}/", {"keep": "annot2", "note": "B is on the nerve"})
    assert response.status_code == 302
    decision = RoiAdjudication.objects.get(frame=frame)
    assert decision.chosen_annotator == b and decision.history.get().history_user == users["pi"]
    kept = RoiAnnotation.objects.get(frame=frame, annotator=b).box
    after = boxes(rated["clip"])
    assert after[frame.pk] == (b.pk, kept) and {k: v for k, v in after.items() if k != frame.pk} == {
        k: v for k, v in before.items() if k != frame.pk}
    assert manifest(rated["hand"])[frame.pk] == (b.pk, kept)  # the bulk manifest agrees


def test_a_third_box_is_the_pis_own_and_every_change_is_audited(client, users, rated):
    frame = rated["frames"][0]
    client.force_login(users["pi"])
    client.post(f"/clips/review/frames/{frame.pk}/", {"keep": "annot2"})
    response = client.post(f"/clips/review/frames/{frame.pk}/", {"keep": "__third__", "center_x": "80",
                                                                "center_y": "60"})
    assert response.status_code == 302
    decision = RoiAdjudication.objects.get(frame=frame)
    assert decision.chosen_annotator is None and decision.box == (50, 30, 60, 60)
    assert manifest(rated["hand"])[frame.pk] == (None, (50, 30, 60, 60))
    assert boxes(rated["clip"])[frame.pk] == (None, (50, 30, 60, 60))
    assert [h.history_type for h in decision.history.order_by("history_date")] == ["+", "~"]
    page = client.get(f"/clips/review/frames/{frame.pk}/").content.decode()
    assert "third box (50, 30, 60 × 60)" in page and "kept annot2" in page  # the trail on the page


def test_adjudication_refuses_bad_decisions_and_saves_nothing(client, users, rated):
    frame, pi = rated["frames"][3], users["pi"]  # only A rated frame 3
    with pytest.raises(ValidationError) as error:
        services.roi_adjudicate(frame=frame, decided_by=pi, chosen_annotator=rated["b"])
    assert error.value.error_dict["chosen_annotator"][0].code == "no_roi"
    with pytest.raises(ValidationError) as error:
        services.roi_adjudicate(frame=frame, decided_by=pi, chosen_annotator=rated["a"], center=(80, 60))
    assert error.value.error_list[0].code == "rater_or_box"
    with pytest.raises(ValidationError) as error:
        services.roi_adjudicate(frame=frame, decided_by=pi, center=(500, 60))
    assert error.value.error_dict["center_x"][0].code == "outside_frame"
    client.force_login(pi)
    response = client.post(f"/clips/review/frames/{rated['frames'][0].pk}/", {"keep": "__third__"})
    assert response.status_code == 400 and "third box" in response.content.decode()
    assert not RoiAdjudication.objects.exists()
    assert client.get(f"/clips/review/frames/{frame.pk}/").status_code == 404  # one rater: nothing to decide


def test_the_review_list_shows_open_and_decided_disagreements(client, users, rated):
    client.force_login(users["pi"])
    page = client.get("/clips/review/").content.decode()
    assert f'data-frame="{rated["frames"][0].pk}"' in page and "1 to decide" in page
    services.roi_adjudicate(frame=rated["frames"][0], decided_by=users["pi"], chosen_annotator=rated["a"])
    assert f'data-frame="{rated["frames"][0].pk}"' not in client.get("/clips/review/").content.decode()
    assert "kept annot" in client.get("/clips/review/?done=1").content.decode()


def test_csa_disagreement_adjudicated_with_a_third_value(client, users, rated):
    frame = rated["frames"][0]
    services.outline_create(frame=frame, annotator=rated["a"], points=[[50, 50], [70, 50], [70, 70], [50, 70]])
    services.outline_create(frame=frame, annotator=rated["b"], points=[[40, 40], [80, 40], [80, 80], [40, 80]])
    found = selectors.csa_disagreements()
    assert [d.hand_id for d in found] == [rated["hand"].pk] and found[0].difference == pytest.approx(75.0)
    assert selectors.csa_disagreements(threshold=80.0) == []
    client.force_login(users["pi"])
    page = client.get(f"/clips/review/hands/{rated['hand'].pk}/").content.decode()
    assert page.count('class="rater-outline"') == 2
    assert client.post(f"/clips/review/hands/{rated['hand'].pk}/", {"keep": "__third__"}).status_code == 400
    client.post(f"/clips/review/hands/{rated['hand'].pk}/", {"keep": "__third__", "csa_mm2": "60"})
    decision = CsaAdjudication.objects.get(hand=rated["hand"])
    assert decision.csa_mm2 == 60 and decision.history.get().history_user == users["pi"]


def test_the_primary_rater_setting_changes_which_rois_a_manifest_uses(client, users, rated):
    frames, a, b = rated["frames"], rated["a"], rated["b"]
    assert {annotator for annotator, _ in manifest(rated["hand"]).values()} == {a.pk}
    client.force_login(users["pi"])
    settings_form = {"dml_threshold_ms": "4.5", "sncv_threshold_m_s": "40", "frames_per_clip": "100",
                     "crop_size_mm": "15", "csa_baseline_method": "manual", **RATER_FORM}
    response = client.post("/cohort/settings/", {**settings_form, "primary_rater_rule": "named"})
    assert "Name the primary rater" in response.content.decode()
    assert StudySettings.current().primary_rater_rule == "most_confirmed"  # refused, nothing saved
    client.post("/cohort/settings/", {**settings_form, "primary_rater_rule": "named", "primary_rater": b.pk})
    assert StudySettings.current().primary_rater == b
    # B left frame 3 unconfirmed: with B named, the hand is not ready rather than mixing raters.
    with pytest.raises(datasets.NotReady, match="1 of 4 frames"):
        datasets.manifest_for([(rated["hand"], "train")])
    services.roi_save(frame=frames[3], annotator=b, center_x=62, center_y=60, status="confirmed")
    assert {annotator for annotator, _ in manifest(rated["hand"]).values()} == {b.pk}
    assert {annotator for annotator, _ in boxes(rated["clip"]).values()} == {b.pk}
    cohort_services.study_settings_update(primary_rater_rule="most_confirmed", primary_rater=None)
    assert {annotator for annotator, _ in manifest(rated["hand"]).values()} == {a.pk}  # ties to the lowest id


def test_the_agreement_page_states_the_blinding(client, users, rated):
    client.force_login(users["pi"])
    page = client.get("/clips/agreement/").content.decode()
    assert "Raters were blinded" in page and "No disagreement has been adjudicated" in page
    cohort_services.study_settings_update(raters_blinded=False)
    page = client.get("/clips/agreement/").content.decode()
    assert "Raters were not blinded to each other" in page
    cohort_services.study_settings_update(raters_blinded=True)
    services.roi_adjudicate(frame=rated["frames"][0], decided_by=users["pi"], chosen_annotator=rated["a"])
    page = client.get("/clips/agreement/").content.decode()
    assert "Raters are blinded now, but were not always" in page and "adjudicated 1 frame and 0 hands" in page
    assert client.get("/api/agreement/").json()["blinding"]["roi_adjudications"] == 1


def test_the_outline_csa_baseline_takes_the_value_the_pi_kept(rated, users):
    from studyapp.experiments import services as experiment_services

    frame, hand = rated["frames"][0], rated["hand"]
    services.outline_create(frame=frame, annotator=rated["a"], points=[[50, 50], [70, 50], [70, 70], [50, 70]])
    services.outline_create(frame=frame, annotator=rated["b"], points=[[40, 40], [80, 40], [80, 80], [40, 80]])
    cohort_services.study_settings_update(csa_baseline_method="outline")
    assert experiment_services._latest_manual_csa([hand.pk]) == {hand.pk: 100.0}  # B's, the latest
    services.csa_adjudicate(hand=hand, decided_by=users["pi"], chosen_annotator=rated["a"])
    assert experiment_services._latest_manual_csa([hand.pk]) == {hand.pk: 25.0}
    services.csa_adjudicate(hand=hand, decided_by=users["pi"], csa_mm2=30.0)
    assert experiment_services._latest_manual_csa([hand.pk]) == {hand.pk: 30.0}
    cohort_services.study_settings_update(csa_baseline_method="manual")
    assert experiment_services._latest_manual_csa([hand.pk]) == {}  # typed scanner values only
