"""Freezing, immutability, blinded predictions queued at ROI confirmation, scoring once, and the ordering rule."""

import datetime as dt
import threading

import pytest
from django.core.exceptions import ValidationError
from django.db import connection

from studyapp.cohort import services as cohort_services
from studyapp.cohort.models import EpsExam
from studyapp.ops.models import BackgroundJob
from studyapp.prospective import services
from studyapp.prospective.jobs import PREDICT_JOB
from studyapp.prospective.models import (ProspectiveEpsChange, ProspectiveModel, ProspectiveOutcome,
                                         ProspectivePrediction)
from tests.factories import UserFactory
from tests.studyapp.prospective.conftest import (EPS_CONTROL, EPS_CTS, annotate, enter_eps, pending_hand,
                                                 registered_run, store)

pytestmark = pytest.mark.django_db


def _jobs():
    return sorted(BackgroundJob.objects.filter(kind=PREDICT_JOB).values_list("params__hand", flat=True))


def test_freeze_records_the_run_weights_threshold_and_settings(frozen, pi):
    run = frozen.run
    assert frozen.weights_sha256 == run.weights_sha256 and frozen.threshold == run.evaluation["threshold"]
    assert frozen.frozen_settings["config"] == run.config
    assert {"crop_size_mm", "frames_per_clip", "input_size", "threshold"} <= set(frozen.frozen_settings)
    assert frozen.frozen_by == pi and services.prospective_model_active() == frozen
    assert frozen.history.count() == 1


def test_only_a_registered_model_with_a_threshold_can_be_frozen(pi):
    run = registered_run()
    run.weights = ""
    with pytest.raises(ValidationError) as error:
        services.prospective_model_freeze(run=run, frozen_by=pi)
    assert error.value.error_dict["run"][0].code == "not_registered"
    assert not ProspectiveModel.objects.exists()


def test_a_frozen_model_is_immutable_also_in_bulk(frozen):
    frozen.threshold = 0.1
    for write in (frozen.save, frozen.delete, lambda: ProspectiveModel.objects.update(threshold=0.1),
                  lambda: ProspectiveModel.objects.all().delete(),
                  lambda: ProspectiveModel.objects.filter(pk=frozen.pk).update(reason="x")):
        with pytest.raises(ValidationError) as error:
            write()
        assert error.value.code == "prospective_immutable"
    frozen.refresh_from_db()
    assert frozen.threshold != 0.1 and ProspectiveModel.objects.count() == 1


def test_predictions_and_outcomes_are_immutable(frozen, tmp_path):
    hand = pending_hand(tmp_path, code="P-1")
    prediction = store(frozen, hand)
    enter_eps(hand, EPS_CTS)
    outcome = prediction.outcome
    for row, manager in ((prediction, ProspectivePrediction.objects), (outcome, ProspectiveOutcome.objects)):
        with pytest.raises(ValidationError):
            row.save()
        with pytest.raises(ValidationError):
            row.delete()
        with pytest.raises(ValidationError):
            manager.update(created_at=None) if row is prediction else manager.update(label=0)
        with pytest.raises(ValidationError):
            manager.filter(pk=row.pk).delete()
    prediction.refresh_from_db()
    assert prediction.probability == pytest.approx(0.8) and ProspectiveOutcome.objects.get().label == 1


def test_retiring_is_a_new_freeze_naming_the_old_model_with_a_reason(frozen, pi):
    run = registered_run("second")
    with pytest.raises(ValidationError) as error:
        services.prospective_model_freeze(run=run, frozen_by=pi)
    assert error.value.error_dict["reason"][0].code == "reason_required"
    second = services.prospective_model_freeze(run=run, frozen_by=pi, reason="better external result")
    assert second.supersedes == frozen and services.prospective_model_active() == second
    with pytest.raises(ValidationError) as error:
        services.prospective_model_freeze(run=run, frozen_by=pi, reason="again")
    assert error.value.error_dict["run"][0].code == "already_active"


def test_the_database_allows_one_active_model(frozen, pi):
    """A second root (two freezes racing, each seeing no active model) is refused by the constraint."""
    from django.db import IntegrityError, transaction

    with pytest.raises(IntegrityError), transaction.atomic():
        ProspectiveModel(run=frozen.run, weights_sha256="a", threshold=0.5, frozen_settings={}, frozen_by=pi,
                         frozen_at=frozen.frozen_at).save()


def test_freezing_queues_every_eligible_hand_and_only_those(pi, tmp_path):
    ready = pending_hand(tmp_path, code="READY")
    unannotated = pending_hand(tmp_path, code="TODO", annotated=False)
    pending_hand(tmp_path, code="EXCL", exclusion_reason="prior_wrist_surgery")
    with_eps = pending_hand(tmp_path, code="EPS")
    enter_eps(with_eps, EPS_CTS)
    assert _jobs() == []  # nothing is frozen yet: confirming ROIs queued nothing
    model = services.prospective_model_freeze(run=registered_run(), frozen_by=pi)
    assert _jobs() == [ready.pk]
    assert BackgroundJob.objects.get(kind=PREDICT_JOB).params == {"model": model.pk, "hand": ready.pk}
    rater = UserFactory(username="late-rater", role="annotator")
    annotate(unannotated.clip, rater)
    assert _jobs() == [ready.pk, unannotated.pk]  # queued by the ROI confirmation hook
    services.prospective_clip_annotated(clip_id=unannotated.clip.pk)
    assert _jobs() == [ready.pk, unannotated.pk]  # the same work while queued: one job


def test_a_hand_is_queued_only_once_all_its_frames_are_confirmed(frozen, tmp_path):
    from studyapp.annotations import services as annotation_services

    hand = pending_hand(tmp_path, code="HALF", annotated=False)
    rater = UserFactory(username="half-rater", role="annotator")
    frames = list(hand.clip.frames.all())
    for frame in frames[:-1]:
        annotation_services.roi_save(frame=frame, annotator=rater, center_x=80, center_y=60, status="confirmed")
        assert _jobs() == []
    annotation_services.roi_save(frame=frames[-1], annotator=rater, center_x=80, center_y=60, status="confirmed")
    assert _jobs() == [hand.pk]


def test_a_prediction_is_stored_once_per_model_and_hand_with_its_hashes(frozen, tmp_path):
    hand = pending_hand(tmp_path, code="ONCE")
    first = store(frozen, hand, probability=0.3)
    assert store(frozen, hand, probability=0.9) == first  # a second delivery returns the stored one
    assert ProspectivePrediction.objects.count() == 1
    assert first.predicted_label == int(0.3 >= frozen.threshold)
    assert len(first.input_sha256) == 64 and first.weights_sha256 == frozen.weights_sha256
    with pytest.raises(ValidationError) as error:  # the constraint, for a write that skips the service
        ProspectivePrediction(model=frozen, hand=hand, clip=hand.clip, probability=0.5, predicted_label=1, frames=[],
                              input_sha256="x", weights_sha256="y", created_at=first.created_at).validate_constraints()
    assert error.value.messages == ["This model has already predicted this hand."]


def test_no_prediction_is_stored_once_the_eps_is_in(frozen, tmp_path):
    hand = pending_hand(tmp_path, code="LATE")
    enter_eps(hand, EPS_CTS)
    with pytest.raises(ValidationError) as error:
        store(frozen, hand)
    assert error.value.error_dict["hand"][0].code == "eps_recorded"
    assert not ProspectivePrediction.objects.exists()


def test_the_first_eps_staging_the_hand_scores_it_once_and_later_edits_are_recorded(frozen, tmp_path, pi):
    hand = pending_hand(tmp_path, code="SCORE", recruitment="patient")
    prediction = store(frozen, hand, probability=0.9)
    exam = enter_eps(hand, EPS_CTS)
    outcome = ProspectiveOutcome.objects.get(prediction=prediction)
    assert (outcome.label, outcome.group, outcome.eps_exam_id, outcome.included) == (1, "cts", exam.pk, True)
    assert outcome.eps_first_entered_at == EpsExam.history.get(id=exam.pk).history_date
    assert prediction.created_at < outcome.eps_first_entered_at
    # A later edit turns the hand control: the outcome stays, the change is recorded once.
    cohort_services.eps_exam_update(exam=exam, dml_ms=3.4, sncv_m_s=55.0)
    cohort_services.hands_restage(hands=[hand])
    assert ProspectiveOutcome.objects.get().label == 1
    change = ProspectiveEpsChange.objects.get()
    assert (change.outcome, change.group, change.label, change.eps_exam_version) == (outcome, "control", 0, 2)
    cohort_services.eps_exam_delete(exam=EpsExam.objects.get(hand=hand))
    assert ProspectiveOutcome.objects.count() == 1 and ProspectiveEpsChange.objects.count() == 2
    assert ProspectiveEpsChange.objects.last().eps_exam_id_now is None


def test_an_eps_leaving_the_hand_to_review_does_not_score_it(frozen, tmp_path):
    hand = pending_hand(tmp_path, code="REVIEW", recruitment="healthy_volunteer")
    store(frozen, hand)
    enter_eps(hand, EPS_CTS)  # a volunteer with abnormal EPS: conflicting evidence, needs review
    assert not ProspectiveOutcome.objects.exists()
    enter_eps(hand, {**EPS_CONTROL, "exam_date": dt.date(2026, 7, 1)})
    assert ProspectiveOutcome.objects.get().label == 0


def test_eps_entered_before_the_prediction_excludes_the_hand(frozen, tmp_path):
    """EPS entered, then deleted (the hand looks pending again), predicted, EPS entered again: the audit trail
    shows the first EPS came before the prediction, so the case is left out."""
    hand = pending_hand(tmp_path, code="ORDER")
    first = enter_eps(hand, EPS_CTS)
    first_id = first.pk
    cohort_services.eps_exam_delete(exam=first)
    prediction = store(frozen, hand)
    enter_eps(hand, EPS_CTS)
    outcome = ProspectiveOutcome.objects.get(prediction=prediction)
    assert outcome.exclusion == ProspectiveOutcome.Exclusion.EPS_BEFORE_PREDICTION and not outcome.included
    assert outcome.eps_first_entered_at == EpsExam.history.filter(id=first_id).earliest("history_date").history_date


def test_eps_entered_before_the_freeze_is_its_own_reason(pi, tmp_path):
    hand = pending_hand(tmp_path, code="PREFREEZE")
    cohort_services.eps_exam_delete(exam=enter_eps(hand, EPS_CTS))
    model = services.prospective_model_freeze(run=registered_run(), frozen_by=pi)
    store(model, hand)
    enter_eps(hand, EPS_CTS)
    assert ProspectiveOutcome.objects.get().exclusion == ProspectiveOutcome.Exclusion.EPS_BEFORE_FREEZE


def test_exclusion_of_compares_with_the_audit_trail(frozen, tmp_path):
    hand = pending_hand(tmp_path, code="CMP")
    prediction = store(frozen, hand)
    tick = dt.timedelta(microseconds=1)
    assert services.exclusion_of(prediction=prediction, eps_first=prediction.created_at + tick) == ""
    assert services.exclusion_of(prediction=prediction, eps_first=prediction.created_at) == "eps_before_prediction"
    assert services.exclusion_of(prediction=prediction, eps_first=frozen.frozen_at) == "eps_before_freeze"


@pytest.mark.django_db(transaction=True)
def test_two_eps_saved_at_once_score_the_prediction_once(tmp_path):
    pi = UserFactory(username="pi-race", role="pi")
    model = services.prospective_model_freeze(run=registered_run("race"), frozen_by=pi)
    hand = pending_hand(tmp_path, code="RACE")
    store(model, hand)
    barrier, errors = threading.Barrier(2), []

    def save(eps):
        try:
            barrier.wait()
            enter_eps(hand, eps)
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=save, args=(eps,)) for eps in (EPS_CTS, {**EPS_CONTROL, "exam_date":
                                                                               dt.date(2026, 6, 2)})]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert EpsExam.objects.filter(hand=hand).count() == 2
    assert ProspectiveOutcome.objects.count() == 1


def test_hands_annotated_in_bulk_are_queued_by_queue_pending(frozen, tmp_path):
    """ROIs written without the annotation services (the demo's seeding, an import) miss the hook."""
    from studyapp.annotations.models import RoiAnnotation

    hand = pending_hand(tmp_path, code="BULK", annotated=False)
    rater = UserFactory(username="bulk-rater", role="annotator")
    RoiAnnotation.objects.bulk_create([RoiAnnotation(frame=f, annotator=rater, x=10, y=10, w=60, h=60,
                                                     status="confirmed") for f in hand.clip.frames.all()])
    assert _jobs() == []
    assert services.prospective_queue_pending() == 1 and _jobs() == [hand.pk]
    store(frozen, hand)
    assert services.prospective_queue_pending() == 0


@pytest.mark.django_db(transaction=True)
def test_a_prediction_racing_the_eps_is_either_refused_or_stored_first_and_scored(tmp_path):
    """The worker's store and the coordinator's EPS lock the hand: never a prediction stored after an EPS it
    doesn't see, never one left unscored by an EPS that committed after it."""
    pi = UserFactory(username="pi-race2", role="pi")
    model = services.prospective_model_freeze(run=registered_run("race2"), frozen_by=pi)
    for attempt in range(3):
        hand = pending_hand(tmp_path, code=f"DUEL{attempt}")
        barrier, errors = threading.Barrier(2), []

        def run(work):
            try:
                barrier.wait()
                work()
            except ValidationError as error:
                errors.append(error.error_dict["hand"][0].code)
            finally:
                connection.close()

        threads = [threading.Thread(target=run, args=(work,)) for work in
                   (lambda: store(model, hand), lambda: enter_eps(hand, EPS_CTS))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        prediction = ProspectivePrediction.objects.filter(hand=hand).first()
        if prediction is None:
            assert errors == ["eps_recorded"]
        else:
            assert errors == [] and prediction.outcome.label == 1
            assert prediction.outcome.included == (prediction.created_at < prediction.outcome.eps_first_entered_at)


def test_the_roi_hook_costs_one_query_while_no_model_is_frozen(tmp_path, django_assert_num_queries):
    from studyapp.annotations import services as annotation_services

    hand = pending_hand(tmp_path, code="COST", annotated=False)
    frame = hand.clip.frames.first()
    rater = UserFactory(username="cost-rater", role="annotator")
    roi = annotation_services.roi_save(frame=frame, annotator=rater, center_x=80, center_y=60)
    with django_assert_num_queries(1):
        services.prospective_clip_annotated(clip_id=frame.clip_id)
    assert annotation_services.roi_set_status(roi=roi, status="confirmed", expected_version=1).version == 2


def test_the_roi_hook_costs_two_queries_while_a_frame_has_no_confirmed_roi(frozen, tmp_path,
                                                                           django_assert_num_queries):
    from studyapp.annotations import services as annotation_services

    hand = pending_hand(tmp_path, code="COST2", annotated=False)
    frame = hand.clip.frames.first()
    annotation_services.roi_save(frame=frame, annotator=UserFactory(username="cost2", role="annotator"),
                                 center_x=80, center_y=60, status="confirmed")
    with django_assert_num_queries(2):
        services.prospective_clip_annotated(clip_id=frame.clip_id)
    assert _jobs() == []
