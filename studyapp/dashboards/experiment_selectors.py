"""Reads behind the experiment dashboard: a fixed number of queries whatever the number of hands or frames.

The runs are read without their per-frame predictions (the dashboard shows what the evaluation stored);
the test hands' codes and clips come in one query each.
"""

from __future__ import annotations

from django.db.models import F, Min

from studyapp.clips.models import Clip
from studyapp.cohort.models import Hand
from studyapp.experiments.models import Experiment, TrainingRun


def hand_stages(hand_ids) -> dict[int, int | None]:
    """Each hand's EPS stage as the cohort records it now (a run stores it when it is evaluated)."""
    return dict(Hand.objects.filter(pk__in=sorted(set(hand_ids))).values_list("pk", "stage"))


def experiment_runs(experiment: Experiment) -> list[TrainingRun]:
    """The experiment's runs without their per-frame predictions."""
    return list(experiment.runs.defer("predictions"))


def test_hands(hand_ids) -> dict[int, dict]:
    """Code, side and first clip of each hand, for labels and links (two queries)."""
    hands = {row["pk"]: {**row, "clip": None} for row in Hand.objects.filter(pk__in=list(hand_ids)).values(
        "pk", "side", study_code=F("participant__study_code"))}
    for hand_id, clip_id in (Clip.objects.filter(hand_id__in=list(hands)).values_list("hand_id")
                             .annotate(first=Min("pk")).values_list("hand_id", "first")):
        hands[hand_id]["clip"] = clip_id
    return hands


def experiment_dashboard_data(experiment: Experiment, runs: list[TrainingRun]) -> dict:
    """The evaluated runs and the test hands they scored."""
    evaluated = [run for run in runs if run.status == TrainingRun.Status.DONE and run.evaluation]
    hand_ids = set()
    for run in evaluated:
        hand_ids.update(run.evaluation.get("hand", {}).get("hand_ids", []))
    return {"evaluated": evaluated, "hands": test_hands(hand_ids) if hand_ids else {}}


def explanation_summaries(experiment: Experiment) -> list[dict]:
    """Attribution shares in nerve and ring per model and method of the experiment's explained runs (else empty).

    The explanation gallery's summaries (studyapp.explanations.selectors.summaries) over all explained frames,
    so the dashboard, the report and the gallery unfiltered give the same numbers.
    """
    from studyapp.explanations import selectors as explanation_selectors

    rows = explanation_selectors.frame_explanations().filter(job__run__experiment=experiment)
    return explanation_selectors.summaries(rows, by=("model", "method")) if rows.exists() else []
