"""The worker's side of a prospective prediction: run the frozen model on a hand's clips. Worker-only (torch)."""

from __future__ import annotations

from django.core.exceptions import ValidationError

from studyapp.cohort.models import Hand
from studyapp.experiments import datasets
from studyapp.experiments.prediction import predict_clip
from studyapp.ops import services as ops_services

from . import services
from .jobs import PROSPECTIVE_PREDICTION
from .models import ProspectiveModel, ProspectivePrediction


def prospective_prediction_run(*, job_id: int, worker: str = ""):
    """Run a queued prospective prediction; a second delivery, or a hand already predicted, stores nothing new."""
    return ops_services.background_job_run(PROSPECTIVE_PREDICTION, job_id, _predict, worker=worker)


def _predict(job, lease):
    try:
        model = ProspectiveModel.objects.select_related("run").get(pk=job.params["model"])
        hand = Hand.objects.get(pk=job.params["hand"])
    except (ProspectiveModel.DoesNotExist, Hand.DoesNotExist):
        return ops_services.background_job_fail(job.pk, lease=lease, error="The model or the hand no longer exists.")
    done = ProspectivePrediction.objects.filter(model=model, hand=hand).first()
    if done is None:
        try:
            done = _predict_hand(model, hand, lease)
        except datasets.NotReady as error:
            return ops_services.background_job_fail(job.pk, lease=lease, error=f"The hand is not ready: {error}.")
        except ValidationError as error:
            return ops_services.background_job_fail(job.pk, lease=lease, error=" ".join(error.messages))
        except FileNotFoundError:
            return ops_services.background_job_fail(job.pk, lease=lease, error=(
                f"The weights file of run {model.run_id} is missing from storage; restore it and confirm an ROI "
                "again to retry."))
    # The result names the stored row only: the job row is readable by whoever queued it, and stays blinded.
    return ops_services.background_job_finish(lease, result={"prediction": done.pk},
                                              message="Prediction stored (blinded until the EPS is entered).")


def _predict_hand(model, hand, lease) -> ProspectivePrediction:
    entries = datasets.hand_entries(hand)
    clips = {}
    for entry in entries:
        clips.setdefault(entry["clip"], []).append(entry)
    frames = []
    for clip in hand.clips.filter(pk__in=clips).order_by("pk"):
        ops_services.background_job_progress(lease, done=len(frames), total=len(entries),
                                             message=f"Predicting clip {clip.pk}")
        frames += [{"frame": f["frame"], "index": f["index"], "probability": f["probability"]}
                   for f in predict_clip(run=model.run, clip=clip)["frames"]]
    return services.prospective_prediction_store(
        model=model, hand=hand, clip=hand.clips.filter(pk__in=clips).order_by("pk").first(), frames=frames,
        input_hash=services.input_sha256(entries), weights_sha256=model.run.weights_sha256)
