"""The study report of one experiment: a self-contained HTML file and a zip of the numbers behind it.

The bundle is a function of the database only (sorted JSON, fixed zip timestamps and order), so generating
it twice gives the same bytes; the HTML differs at most in its generation time.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable
from pathlib import Path

from django.contrib.staticfiles import finders
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.template.loader import render_to_string
from django.utils import timezone

from studyapp.cohort.models import CsaMeasurement
from studyapp.experiments.models import Split, TrainingRun

from . import experiment_panels, panels, selectors, tables
from .figures import DataTable

REPORT_DIR = "reports"
ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # the zip format's epoch: no generation time inside the bundle
# The very files the pages load, found where the static files are (one copy of each).
PLOTLY_JS = "vendor/plotly/plotly.min.js"
FIGURES_JS = "js/figures.js"


def report_names(experiment_id: int) -> dict[str, str]:
    base = f"{REPORT_DIR}/experiment-{experiment_id}"
    return {"html": f"{base}/report.html", "bundle": f"{base}/bundle.zip"}


def deterministic_zip(files: dict[str, bytes]) -> bytes:
    """A zip of `files` in name order with fixed timestamps and permissions: same files, same bytes."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, files[name])
    return out.getvalue()


def _json(value) -> bytes:
    return (json.dumps(value, sort_keys=True, indent=1, ensure_ascii=False, default=str) + "\n").encode()


def _labels() -> dict[str, str]:
    from mlworker.ml.constants import MODEL_LABELS  # the worker has torch; the web process loaded it already

    return MODEL_LABELS


def report_content(*, experiment_id: int, progress: Callable[[int, int, str], None] | None = None) -> dict:
    """Everything the report shows, as panels, tables and numbers (read from the database, nothing stored)."""
    step = progress or (lambda done, total, message: None)
    step(0, 4, "Reading the experiment")
    data = selectors.experiment_dashboard_data(experiment_id=experiment_id)
    labels = _labels()
    runs = [run for run in data["runs"] if run["status"] == TrainingRun.Status.DONE]
    evaluated = [run for run in runs if run["evaluation"]]
    threshold = evaluated[0]["evaluation"].get("threshold", 0.5) if evaluated else 0.5
    comparison = data["experiment"]["comparison"] or {}
    step(1, 4, "Cohort and agreement")
    cohort = selectors.cohort_dashboard_data()
    study = cohort["settings"]
    records = panels.hand_records(cohort["hands"])
    table_one = tables.table_one(records)
    agreement = selectors.annotation_dashboard_data()
    step(2, 4, "Figures")
    hand_url = "#hand-{pk}"  # the report stands alone: hands are named, not linked
    calibration, brier = experiment_panels.calibration_panels(evaluated, labels) if evaluated else ([], [])
    figures = {
        "flow": [panels.figures.flow_figure(cohort["flow"])],
        "csa": [panels.csa_by_group(records, cohort["threshold"],
                                    method_label=CsaMeasurement.Method(study.csa_baseline_method).label.lower())],
        "training": experiment_panels.training_panels(runs, labels),
        "roc": experiment_panels.roc_panels(evaluated, labels, comparison.get("csa_baseline"), threshold)
        if evaluated else [],
        "confusion": experiment_panels.confusion_panels(evaluated, labels),
        "stages": [experiment_panels.stage_panel(evaluated, data["hands"], labels, threshold=threshold,
                                                 hand_url=hand_url)] if evaluated else [],
        "calibration": calibration,
        "agreement": panels.agreement_panels(agreement["roi"], agreement["csa"]),
    }
    split = Split.objects.values("pk", "name", "version", "manifest", "manifest_hash", "seed", "locked_at").get(
        pk=data["experiment"]["split_pk"])
    provenance = list(TrainingRun.objects.filter(experiment_id=experiment_id).order_by("pk").values(
        "model_name", "status", "weights_sha256", "manifest_hash", "code_version", "library_versions", "device",
        "config", "best_epoch", "epochs_done", "random_init"))
    for run in provenance:
        run["label"] = labels.get(run["model_name"], run["model_name"])
    manifest = split["manifest"] or []
    subsets = {subset: len({e["hand"] for e in manifest if e.get("subset") == subset}) for subset in ("train", "test")}
    frames = {subset: sum(1 for e in manifest if e.get("subset") == subset) for subset in ("train", "test")}
    results = [{"model": labels.get(run["model_name"], run["model_name"]), "model_name": run["model_name"],
                **{level: {"n": run["evaluation"][level]["n"], "metrics": run["evaluation"][level]["metrics"],
                           "auc_delong_ci": run["evaluation"][level]["auc_delong_ci"],
                           "ci": run["evaluation"][level]["ci"]} for level in ("frame", "hand")}}
               for run in evaluated]
    step(3, 4, "Writing")
    return {
        "experiment": data["experiment"], "split": split, "subsets": subsets, "frames": frames,
        "study_settings": {"crop_size_mm": study.crop_size_mm, "frames_per_clip": study.frames_per_clip,
                           "dml_threshold_ms": study.dml_threshold_ms, "sncv_threshold_m_s": study.sncv_threshold_m_s,
                           "csa_baseline_method": study.csa_baseline_method},
        "runs": provenance, "labels": labels, "threshold": threshold, "results": results, "brier": brier,
        "delong": experiment_panels.delong_rows(comparison, labels), "table_one": table_one,
        "flow": cohort["flow"], "agreement": {"roi": agreement["roi"], "csa": agreement["csa"]},
        "figures": figures,
    }


def report_bundle(content: dict) -> bytes:
    """The numbers as JSON and CSV, the manifest, the run configurations and the environment, zipped."""
    numbers = {key: content[key] for key in ("threshold", "results", "brier", "delong", "table_one", "flow",
                                             "agreement", "subsets", "frames", "study_settings")}
    numbers["experiment"] = {k: content["experiment"][k] for k in ("pk", "name", "split_name", "split_version",
                                                                   "manifest_hash")}
    files = {"numbers.json": _json(numbers),
             "manifest.json": _json({k: content["split"][k] for k in ("name", "version", "seed", "manifest_hash",
                                                                       "manifest")}),
             "environment.json": _json([{k: run[k] for k in ("model_name", "code_version", "library_versions",
                                                            "device", "weights_sha256")} for run in content["runs"]]),
             "table-1.csv": DataTable(["variable", "summary", "control", "CTS", "test", "p", "SMD"],
                                      tables.table_one_csv_rows(content["table_one"])).csv().encode()}
    for run in content["runs"]:
        files[f"runs/{run['model_name']}.json"] = _json(run)
    for panel in (p for group in content["figures"].values() for p in group):
        files[f"figures/{panel.key}.csv"] = panel.table.csv().encode()
    return deterministic_zip(files)


def report_html(content: dict, *, generated_at) -> str:
    panels_json = [p for group in content["figures"].values() for p in group]
    return render_to_string("dashboards/report.html", {
        **content, "generated_at": generated_at, "panel_count": len(panels_json),
        "plotly_js": _static_text(PLOTLY_JS), "figures_js": _static_text(FIGURES_JS)})


def _static_text(path: str) -> str:
    return Path(finders.find(path)).read_text(encoding="utf-8")


def report_generate(*, experiment_id: int, progress: Callable[[int, int, str], None] | None = None) -> dict:
    """Build the report and its bundle and store them (replacing an earlier pair); returns their storage names."""
    content = report_content(experiment_id=experiment_id, progress=progress)
    names = report_names(experiment_id)
    for kind, payload in (("bundle", report_bundle(content)),
                          ("html", report_html(content, generated_at=timezone.now()).encode())):
        if default_storage.exists(names[kind]):
            default_storage.delete(names[kind])
        default_storage.save(names[kind], ContentFile(payload))
    if progress:
        progress(4, 4, "Report ready")
    return names



REPORT_JOB = "study_report"


def report_job_latest(*, experiment_id: int):
    from studyapp.ops.models import BackgroundJob

    return (BackgroundJob.objects.filter(kind=REPORT_JOB, params__experiment=experiment_id)
            .order_by("-created_at", "-pk").first())


def report_queue(*, experiment_id: int):
    """Queue the report for the worker (after commit); a report already queued or running is reused."""
    from django.db import transaction

    from studyapp.ops.models import BackgroundJob

    from .tasks import generate_report

    latest = report_job_latest(experiment_id=experiment_id)
    if latest and latest.status in (BackgroundJob.Status.QUEUED, BackgroundJob.Status.RUNNING):
        return latest
    job = BackgroundJob.objects.create(kind=REPORT_JOB, params={"experiment": experiment_id}, total=4,
                                       message="Waiting for a worker")
    transaction.on_commit(lambda: generate_report.delay(job.pk))
    return job


def report_available(*, experiment_id: int) -> bool:
    names = report_names(experiment_id)
    return default_storage.exists(names["html"]) and default_storage.exists(names["bundle"])
