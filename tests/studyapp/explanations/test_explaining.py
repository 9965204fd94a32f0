"""Explanation jobs executed in-process (the worker's code path without the broker) on a tiny trained run."""

import io

import numpy as np
import pytest
from django.core.files.storage import default_storage

from studyapp.annotations.models import NerveOutline
from studyapp.explanations import explaining, rules, services
from studyapp.explanations.models import ExplanationJob, FrameExplanation
from studyapp.protocol.models import StudySettings
from tests.studyapp.explanations.conftest import FAST_PARAMS

pytestmark = pytest.mark.django_db


@pytest.fixture
def no_queue(monkeypatch):
    queued = []
    monkeypatch.setattr(services, "queue_job", queued.append)
    return queued


def explain(run, method, **kwargs):
    job = services.jobs_queue(run=run, methods=[method], params={method: FAST_PARAMS[method]}
                              if method in FAST_PARAMS else None, **kwargs)[0]
    return job, explaining.job_run(job_id=job.pk, task_id=f"task-{method}", worker="w")


def test_occlusion_explains_every_test_frame_with_outcomes_outlines_and_shares(trained_run, no_queue):
    run = trained_run
    job, result = explain(run, "occlusion")
    assert result == "done"
    job.refresh_from_db()
    test_frames = run.predictions["frame_ids"]
    rows = list(FrameExplanation.objects.filter(job=job).select_related("frame"))
    assert job.status == "done" and job.frames_done == job.frames_total == len(rows) == len(test_frames)
    assert job.params == {**FAST_PARAMS["occlusion"], "batch_size": 256} and job.seed == 0
    assert {"torch", "lime"} <= set(job.library_versions) and job.device == "cpu"
    assert set(job.sanity) >= {"spearman", "median", "passed", "reason"} and len(job.sanity["frames"]) == 8

    probabilities = dict(zip(test_frames, run.predictions["probabilities"]))
    hand_probabilities = dict(zip(run.evaluation["hand"]["hand_ids"], run.evaluation["hand"]["probabilities"]))
    for row in rows:
        assert row.probability == pytest.approx(probabilities[row.frame_id])
        assert row.frame_outcome == rules.outcome(row.label, probabilities[row.frame_id], 0.5)
        assert row.hand_probability == pytest.approx(hand_probabilities[row.hand_id])
        assert row.hand_outcome == rules.outcome(row.label, hand_probabilities[row.hand_id], 0.5)
        with default_storage.open(row.attribution.name) as handle:
            attribution = np.load(io.BytesIO(handle.read()))["attribution"]
        assert attribution.dtype == np.float16 and attribution.shape == (32, 32)
        for field in ("crop", "heatmap", "overlay"):
            with default_storage.open(getattr(row, field).name) as handle:
                assert handle.read(8) == b"\x89PNG\r\n\x1a\n"
    # The demo traces the outline on each clip's first frame: traced there, carried to the others from it.
    traced = {o.frame_id for o in NerveOutline.objects.filter(frame__in=[r.frame_id for r in rows])}
    for row in rows:
        if row.frame_id in traced:
            assert row.outline_source == "traced" and row.outline_frame_id == row.frame_id
        else:
            assert row.outline_source == "carried" and row.outline_frame.clip_id == row.frame.clip_id
        assert row.shares is not None and 0 < row.shares["nerve_area"] < 0.5
    # A hand-level outcome is the same on every frame of the hand.
    assert all(len({r.hand_outcome for r in rows if r.hand_id == hand}) == 1 for hand in {r.hand_id for r in rows})


def test_carried_outline_is_the_traced_one_moved_with_the_roi(trained_run, no_queue):
    test_set = [e for e in trained_run.experiment.split.manifest if e["subset"] == "test"]
    sources = explaining.outline_sources(test_set)
    by_frame = {e["frame"]: e for e in test_set}
    for frame_id, (source, points, source_frame) in sources.items():
        if source != "carried":
            continue
        outline = NerveOutline.objects.get(frame_id=source_frame)
        shift = rules.box_centre(by_frame[frame_id]["box"]) - rules.box_centre(by_frame[source_frame]["box"])
        assert np.allclose(points, np.asarray(outline.points) + shift)
    # Without outlines every frame is counted as "none", never dropped.
    NerveOutline.objects.all().delete()
    assert {s for s, _, _ in explaining.outline_sources(test_set).values()} == {"none"}
    assert len(explaining.outline_sources(test_set)) == len(test_set)


def test_a_second_run_skips_explained_frames_and_resumes_missing_ones(trained_run, no_queue):
    job, _ = explain(trained_run, "gradcam")
    first = dict(FrameExplanation.objects.filter(job=job).values_list("frame_id", "created_at"))
    job, result = explain(trained_run, "gradcam")  # queued again, same parameters
    assert result == "done"
    assert dict(FrameExplanation.objects.filter(job=job).values_list("frame_id", "created_at")) == first
    # A crash lost some rows: a rerun explains exactly those.
    lost = list(first)[:3]
    FrameExplanation.objects.filter(job=job, frame_id__in=lost).delete()
    explain(trained_run, "gradcam")
    again = dict(FrameExplanation.objects.filter(job=job).values_list("frame_id", "created_at"))
    assert set(again) == set(first)
    assert {f for f in again if again[f] != first[f]} == set(lost)


def test_lime_explains_the_study_setting_s_frames_per_hand(trained_run, no_queue):
    StudySettings.objects.filter(id=1).update(explain_frames_lime=2)
    job, result = explain(trained_run, "lime")
    assert result == "done"
    rows = FrameExplanation.objects.filter(job=job)
    hands = set(trained_run.evaluation["hand"]["hand_ids"])
    assert rows.count() == 2 * len(hands) and set(rows.values_list("hand_id", flat=True)) == hands
    assert ExplanationJob.objects.get(pk=job.pk).params["num_samples"] == 40


def test_cancel_stops_between_hands_and_keeps_what_is_done(trained_run, no_queue, monkeypatch):
    queued = services.jobs_queue(run=trained_run, methods=["gradcam"])[0]
    services.job_cancel(job=queued)
    queued.refresh_from_db()
    assert queued.status == "cancelled"
    assert explaining.job_run(job_id=queued.pk, task_id="t", worker="w") == "not claimed"
    with pytest.raises(Exception) as refused:
        services.job_cancel(job=queued)
    assert "already cancelled" in str(refused.value)

    job = services.jobs_queue(run=trained_run, methods=["gradcam"])[0]
    explain_hand = explaining._Context.explain

    def explain_then_cancel(self, entries):
        services.job_cancel(job=self.job)  # the PI clicks Cancel while the first hand is explained
        return explain_hand(self, entries)

    monkeypatch.setattr(explaining._Context, "explain", explain_then_cancel)
    assert explaining.job_run(job_id=job.pk, task_id="t2", worker="w") == "cancelled"
    job.refresh_from_db()
    assert job.status == "cancelled" and 0 < job.frames_done < job.frames_total
    assert FrameExplanation.objects.filter(job=job).count() == job.frames_done


def test_queueing_refuses_a_run_that_is_not_done_and_bad_parameters(trained_run, no_queue):
    from django.core.exceptions import ValidationError

    from studyapp.experiments.models import TrainingRun

    TrainingRun.objects.filter(pk=trained_run.pk).update(status="failed")
    with pytest.raises(ValidationError) as error:
        services.jobs_queue(run=trained_run)
    assert error.value.error_dict["run"][0].code == "run_not_done"
    TrainingRun.objects.filter(pk=trained_run.pk).update(status="done")
    with pytest.raises(ValidationError) as error:
        services.jobs_queue(run=trained_run, methods=["lime"], params={"lime": {"num_sample": 5}})
    assert error.value.error_dict["params"][0].code == "bad_params" and "num_sample" in str(error.value)
    assert not ExplanationJob.objects.exists()  # nothing half-saved
    jobs = services.jobs_queue(run=trained_run)
    assert [j.method for j in jobs] == ["occlusion", "lime", "gradcam"]
    with pytest.raises(ValidationError) as error:
        services.jobs_queue(run=trained_run, methods=["lime"])
    assert error.value.error_dict["methods"][0].code == "already_queued"


def test_a_run_finishing_done_queues_its_explanations(small_study, monkeypatch, tmp_path, settings,
                                                     django_capture_on_commit_callbacks):
    from studyapp.experiments import services as experiment_services
    from tests.studyapp.explanations.conftest import train_tiny_run

    settings.CTS_CHECKPOINT_DIR = tmp_path / "ckpt"
    settings.CTS_EXPLAIN_AFTER_TRAINING = True
    monkeypatch.setattr(experiment_services, "queue_run", lambda run_id: None)
    queued = []
    monkeypatch.setattr(services, "queue_job", queued.append)
    with django_capture_on_commit_callbacks(execute=True):
        run = train_tiny_run()
    assert sorted(ExplanationJob.objects.filter(run=run).values_list("method", flat=True)) == [
        "gradcam", "lime", "occlusion"]
    assert sorted(queued) == sorted(ExplanationJob.objects.values_list("pk", flat=True))


def test_method_names_match_the_pure_package():
    from mlworker.explain import METHODS

    assert tuple(ExplanationJob.Method.values) == tuple(METHODS)


def test_a_failure_to_queue_explanations_leaves_the_run_done(trained_run, settings, monkeypatch,
                                                             django_capture_on_commit_callbacks, caplog):
    settings.CTS_EXPLAIN_AFTER_TRAINING = True

    def broker_down(**kwargs):
        raise ConnectionError("broker unreachable")

    monkeypatch.setattr(services, "jobs_queue", broker_down)
    with django_capture_on_commit_callbacks(execute=True):
        services.jobs_queue_after_training(run_id=trained_run.pk)
    trained_run.refresh_from_db()
    assert trained_run.status == "done" and "queue them from the gallery" in caplog.text
    settings.CTS_EXPLAIN_AFTER_TRAINING = False
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        services.jobs_queue_after_training(run_id=trained_run.pk)
    assert callbacks == []


def test_a_job_held_by_a_dead_worker_is_queued_again_and_resumes(trained_run, no_queue):
    job = services.jobs_queue(run=trained_run, methods=["gradcam"])[0]
    assert services.job_claim(job_id=job.pk, task_id="old", worker="w1@host") is not None
    no_queue.clear()
    assert services.jobs_requeue_orphans(worker="w2@host") == []
    assert services.jobs_requeue_orphans(worker="w1@host") == [job.pk] and no_queue == [job.pk]
    assert explaining.job_run(job_id=job.pk, task_id="new", worker="w1@host") == "done"
    assert explaining.job_run(job_id=job.pk, task_id="old", worker="w1@host") == "not claimed"
