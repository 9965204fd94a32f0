"""Reads for the study report: the latest report of an experiment, and every number the report states."""

from __future__ import annotations

from django.core.files.storage import default_storage

from studyapp.annotations import selectors as annotation_selectors
from studyapp.cohort.selectors import cohort_flow, latest_inlet_csa
from studyapp.dashboards import panels as dashboard_panels
from studyapp.dashboards import selectors as dashboard_selectors
from studyapp.dashboards import tables
from studyapp.dashboards.experiment_selectors import experiment_runs, explanation_summaries
from studyapp.experiments.models import Experiment, SplitMember, TrainingRun
from studyapp.protocol.models import StudySettings

from . import heatmaps
from .models import StudyReport

RUN_PROVENANCE = ("model_name", "random_init", "status", "config", "device", "best_epoch", "epochs_done",
                  "weights_sha256", "manifest_hash", "code_version", "library_versions", "images_per_s")


def latest_report(experiment: Experiment) -> StudyReport | None:
    return experiment.reports.first()


def report_cohort(experiment: Experiment, evaluated: list[TrainingRun]) -> dict:
    """The flow through the experiment's split, and Table 1 of the included hands (as the cohort stands now)."""
    settings = StudySettings.current()
    hands = dashboard_selectors.cohort_hands()
    csa = latest_inlet_csa(hand_ids=[h["pk"] for h in hands if not h["exclusion_reason"]],
                           method=settings.csa_baseline_method)
    for hand in hands:
        hand["csa_mm2"] = csa.get(hand["pk"])
    flow = cohort_flow()
    split = experiment.split
    counts = {s: {"control": 0, "cts": 0} for s in ("train", "test")}
    for subset, label in SplitMember.objects.filter(split=split).values_list("subset", "label"):
        counts.setdefault(subset, {"control": 0, "cts": 0})["cts" if label else "control"] += 1  # and "external"
    flow["split"] = {"pk": split.pk, "name": split.name, "version": split.version,
                     "groups": {g: {s: counts[s][g] for s in ("train", "test")} for g in ("control", "cts")}}
    flow["analysed"] = None
    if evaluated:
        labels = (evaluated[0].evaluation.get("hand") or {}).get("labels", [])
        flow["analysed"] = {"experiment": experiment.name,
                            "groups": {"control": sum(1 for x in labels if int(x) == 0),
                                       "cts": sum(1 for x in labels if int(x) == 1)}}
    records = dashboard_panels.hand_records(hands)
    return {"flow": flow, "table_one": tables.table_one(records), "settings": settings,
            "split_counts": counts}


def report_agreement() -> dict:
    return {"roi": annotation_selectors.roi_agreement(), "csa": annotation_selectors.csa_agreement()}


def report_runs(experiment: Experiment) -> list[TrainingRun]:
    return experiment_runs(experiment)


def run_provenance(run: TrainingRun) -> dict:
    out = {field: getattr(run, field) for field in RUN_PROVENANCE}
    out["weights"] = run.weights.name if run.weights else ""
    return out


def report_explanations(experiment: Experiment) -> list[dict]:
    """Attribution shares per model and method where the experiment's runs were explained (else empty)."""
    return explanation_summaries(experiment)


def report_heatmaps(experiment: Experiment, *, per_outcome: int = 1) -> list[dict]:
    """Representative overlays per model and method (heatmaps.choose_examples), each image as a data: URI.

    One query for the rows; then only the chosen overlays are read from storage. A missing or unreadable file
    leaves its example without an image (`image` None) rather than failing the report.
    """
    from studyapp.explanations.models import FrameExplanation

    rows = [{"pk": r["pk"], "model": r["job__run__model_name"], "method": r["job__method"],
             "hand_outcome": r["hand_outcome"], "frame_outcome": r["frame_outcome"],
             "study_code": r["hand__participant__study_code"], "side": r["hand__side"],
             "frame_index": r["frame__index"], "probability": r["probability"],
             "hand_probability": r["hand_probability"], "overlay": r["overlay"], "shares": r["shares"]}
            for r in FrameExplanation.objects.filter(job__run__experiment=experiment).values(
                "pk", "job__run__model_name", "job__method", "hand_outcome", "frame_outcome",
                "hand__participant__study_code", "hand__side", "frame__index", "probability", "hand_probability",
                "overlay", "shares")]
    groups = heatmaps.choose_examples(rows, per_outcome=per_outcome)
    for group in groups:
        for example in group["examples"]:
            try:
                with default_storage.open(example["overlay"], "rb") as handle:
                    example["image"] = heatmaps.png_data_uri(handle.read())
            except (OSError, ValueError):
                example["image"] = None
    return groups
