"""Queue and generate an experiment's study report: one self-contained HTML file and a bundle of its numbers.

Generation runs on a worker (default queue) and writes its progress on the StudyReport row. The bundle is
a function of the database alone (byte-identical when generated twice); the HTML differs only in the
generation time it prints.
"""

from __future__ import annotations

import dataclasses
import hashlib
import sys
from collections.abc import Callable

from django.contrib.staticfiles import finders
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.template.loader import render_to_string
from django.utils import timezone

from studyapp.cohort.models import CsaMeasurement
from studyapp.common.jobs import JobKind, Lease, LeaseLost, lease_claim, lease_kept, queue_on_commit
from studyapp.dashboards import experiment_views
from studyapp.dashboards import figures as dashboard_figures
from studyapp.dashboards import panels as dashboard_panels
from studyapp.dashboards import tables
from studyapp.dashboards.figures import DataTable
from studyapp.experiments.models import Experiment, TrainingRun
from studyapp.explanations.models import METHOD_LABELS

from . import selectors
from .bundle import bundle_files, zip_bytes
from .methods import methods_paragraphs
from .models import StudyReport

STEPS = ["Reading the results and building the figures", "Writing the bundle", "Writing the HTML file", "Storing"]
VALIDATION_FRACTION = 0.2  # experiments.services.VALIDATION_FRACTION (not imported: it loads the model code)
N_BOOT = 2000  # mlworker.stats.evaluation.N_BOOT


def _queue(report_id: int) -> None:
    from .tasks import generate_report

    generate_report.delay(report_id)


REPORT = JobKind(StudyReport, queue=lambda report_id: _queue(report_id))


def report_queue(*, experiment: Experiment, requested_by=None) -> StudyReport:
    """Queue a report of a finished experiment; refused while one is being made or a run is unfinished."""
    unfinished = experiment.reports.filter(status__in=[StudyReport.Status.QUEUED, StudyReport.Status.RUNNING])
    # A report whose worker stopped renewing its lease no longer blocks a new one (workers also requeue it).
    unfinished.filter(REPORT.expired(timezone.now())).update(
        status=StudyReport.Status.FAILED, error="Its worker stopped; generate it again.", finished_at=timezone.now(),
        lease_token="", lease_expires_at=None)
    if unfinished.exists():
        raise ValidationError("A report of this experiment is already being generated.", code="report_running")
    runs = list(experiment.runs.values_list("status", flat=True))
    if not runs or any(status in (TrainingRun.Status.QUEUED, TrainingRun.Status.RUNNING) for status in runs):
        raise ValidationError("The report needs every run of the experiment finished.", code="runs_unfinished")
    if TrainingRun.Status.DONE not in runs:
        raise ValidationError("No run of this experiment finished training: there are no results to report.",
                              code="no_results")
    report = StudyReport.objects.create(experiment=experiment, requested_by=requested_by, total=len(STEPS),
                                        message="Queued")
    queue_on_commit(REPORT, report.pk)
    return report


def _labels() -> dict:
    from mlworker.ml.constants import MODEL_LABELS  # on the worker only: the package loads torch

    return MODEL_LABELS


def report_content(experiment: Experiment, *, labels: dict) -> dict:
    """Everything the report shows and the bundle holds, from the database (no clock, no host)."""
    runs = selectors.report_runs(experiment)
    results = experiment_views.results(experiment, runs, labels)
    evaluated = [m["run"] for m in results["models"]]
    cohort = selectors.report_cohort(experiment, evaluated)
    agreement = selectors.report_agreement()
    study = cohort["settings"]
    split = experiment.split
    manifest = split.manifest or []
    frames = {subset: sum(1 for e in manifest if e.get("subset") == subset) for subset in ("train", "test", "external")}
    csa_method = CsaMeasurement.Method(study.csa_baseline_method).label.lower()
    protocol = {"dml_threshold_ms": study.dml_threshold_ms, "sncv_threshold_m_s": study.sncv_threshold_m_s,
                "frames_per_clip": study.frames_per_clip, "crop_size_mm": study.crop_size_mm, "csa_method": csa_method}
    split_info = {"pk": split.pk, "name": split.name, "version": split.version, "seed": split.seed,
                  "counts": cohort["split_counts"], "manifest_sha256": split.manifest_hash,
                  "locked_at": split.locked_at, "kind": split.kind, "domain": split.domain,
                  "train_domains": list(split.train_domains)}
    run_rows = [{"label": experiment_views.run_label(run, labels), "config": run.config, "device": run.device,
                 "random_init": run.random_init} for run in evaluated]
    threshold = evaluated[0].evaluation.get("threshold", 0.5) if evaluated else 0.5
    methods = methods_paragraphs(protocol=protocol, split=split_info, frames=frames, runs=run_rows,
                                 evaluation={"threshold": threshold, "n_boot": N_BOOT,
                                             "validation_fraction": VALIDATION_FRACTION})
    panels = results["panels"]
    flow = dataclasses.replace(dashboard_figures.flow_figure(cohort["flow"]), caption=(
        f"Split: {split.name} v{split.version}, the split of this experiment; analysed: the test hands its "
        f"models were evaluated on. Screening, exclusions and groups: the cohort when the report was generated."))
    agreement_panels = dashboard_panels.agreement_panels(agreement["roi"], agreement["csa"])
    figure_panels = [flow, *panels["roc"], *panels["confusion"]]
    for extra in (panels["stage"], panels["differences"], panels["external"], panels["external_domains"]):
        if extra:
            figure_panels.append(extra)
    figure_panels += panels["calibration"] + experiment_views.training_panels(runs, labels) + agreement_panels
    explanations = selectors.report_explanations(experiment)
    attribution = experiment_views.attribution_panel(explanations, labels)
    if attribution:
        figure_panels.append(attribution)
    heatmaps = selectors.report_heatmaps(experiment)
    for group in heatmaps:
        group["label"] = f"{labels.get(group['model'], group['model'])} · {METHOD_LABELS[group['method']]}"
    table_one_csv = DataTable(["variable", "summary", "control", "CTS", "test", "p", "SMD"],
                              tables.table_one_csv_rows(cohort["table_one"]))
    csv_tables = {"table-1": table_one_csv, "results": results["metrics_table"],
                  **({"heatmap-examples": heatmap_table(heatmaps)} if heatmaps else {}),
                  **{panel.key: panel.table for panel in figure_panels + panels["per_hand"]}}
    provenance = [selectors.run_provenance(run) for run in runs]
    numbers = {
        "experiment": {"pk": experiment.pk, "name": experiment.name, "config": experiment.config,
                       "created_at": experiment.created_at, "manifest_sha256": experiment.manifest_hash},
        "protocol": protocol, "split": split_info, "frames": frames, "methods": methods,
        "flow": cohort["flow"], "table_one": cohort["table_one"],
        "runs": [{**selectors.run_provenance(run), "history": run.history, "evaluation": run.evaluation}
                 for run in runs],
        "comparison": experiment.comparison, "agreement": agreement, "explanations": explanations,
    }
    environment = {"runs": {run.model_name: {"code_version": run.code_version, "device": run.device,
                                             "library_versions": run.library_versions} for run in runs}}
    return {"experiment": experiment, "split": split_info, "protocol": protocol, "methods": methods,
            "cohort": cohort, "results": results, "flow": flow, "agreement": agreement,
            "agreement_panels": agreement_panels, "training_panels": experiment_views.training_panels(runs, labels),
            "numbers": numbers, "csv_tables": csv_tables, "manifest": manifest, "provenance": provenance,
            "environment": environment, "labels": labels, "runs": runs, "attribution": attribution,
            "explanations": explanations, "heatmaps": heatmaps}


def heatmap_table(heatmaps: list[dict]) -> DataTable:
    """Which frames the report's heatmap panel shows (the images themselves are in the HTML only)."""
    return DataTable(["model · method", "hand outcome", "hand", "frame", "frame CTS probability",
                      "hand mean CTS probability", "explanation id"],
                     [[group["label"], example["hand_outcome"], f"{example['study_code']} {example['side']}",
                       example["frame_index"], round(example["probability"], 4), round(example["hand_probability"], 4),
                       example["pk"]] for group in heatmaps for example in group["examples"]])


README = """Study report bundle: {name} (experiment {pk})

numbers.json      every number of the report (cohort flow, Table 1, each run's evaluation with CIs at frame and
                  hand level, comparisons, CSA baseline, agreement), keys sorted
csv/              the data table of each figure and table of the report, one CSV each
manifest.json     the split's frozen manifest (hand, frame, crop box, label, subset); its SHA-256 is {manifest}
runs/             each run's training configuration and provenance (weights SHA-256, git commit, device)
environment.json  the library versions and code version each run was trained with

Generated from the database alone: generating it again from the same data gives the same bytes.
"""


def build_bundle(content: dict) -> bytes:
    experiment = content["experiment"]
    runs = [{**row, "history": run.history} for row, run in zip(content["provenance"], content["runs"])]
    files = bundle_files(numbers=content["numbers"], tables=content["csv_tables"], manifest=content["manifest"],
                         runs=runs, environment=content["environment"],
                         readme=README.format(name=experiment.name, pk=experiment.pk,
                                              manifest=experiment.split.manifest_hash))
    return zip_bytes(files)


def _inline_asset(path: str) -> str:
    with open(finders.find(path), encoding="utf-8") as handle:
        return handle.read()


def render_html(content: dict, *, bundle_sha256: str, generated_at) -> str:
    import plotly
    from plotly.offline import get_plotlyjs

    return render_to_string("reports/report.html", {
        **content, "bundle_sha256": bundle_sha256, "generated_at": generated_at,
        "plotly_js": get_plotlyjs(), "plotly_version": plotly.__version__,
        "figures_js": _inline_asset("js/figures.js"),
        "python_version": sys.version.split()[0],
    })


def report_run(*, report_id: int) -> str:
    """The worker's part: claim the report under a lease, generate it, record the end; a second delivery is dropped."""
    lease = lease_claim(REPORT, report_id, error="")
    if lease is None:
        return "not claimed"
    with lease_kept(lease):
        try:
            report_generate(report_id=report_id, lease=lease)
        except LeaseLost:
            return "taken over"
        except Exception as error:
            lease.finish(StudyReport.Status.FAILED, error=f"{type(error).__name__}: {error}", finished_at=timezone.now())
            raise
    return "done"


def report_generate(*, report_id: int, lease: Lease | None = None,
                    progress: Callable[[int, str], None] | None = None) -> StudyReport:
    """Generate the report's HTML file and bundle and store them; progress is written on the row."""
    report = StudyReport.objects.select_related("experiment__split").get(pk=report_id)
    rows = lease.rows() if lease else StudyReport.objects.filter(pk=report_id)

    def step(index: int) -> None:
        if lease:
            lease.check()
        rows.update(done=index, total=len(STEPS), message=STEPS[index] if index < len(STEPS) else "Done")
        if progress:
            progress(index, STEPS[index] if index < len(STEPS) else "Done")

    if lease is None:
        rows.update(status=StudyReport.Status.RUNNING)
    step(0)
    content = report_content(report.experiment, labels=_labels())
    step(1)
    bundle = build_bundle(content)
    digest = hashlib.sha256(bundle).hexdigest()
    step(2)
    html = render_html(content, bundle_sha256=digest, generated_at=timezone.now())
    step(3)
    folder = f"reports/experiment_{report.experiment_id}"
    # Fixed names, replaced on a rerun: a report restarted after its worker died leaves one pair of files.
    html_name, bundle_name = f"{folder}/report_{report.pk}.html", f"{folder}/report_{report.pk}_bundle.zip"
    for name, data in ((html_name, html.encode()), (bundle_name, bundle)):
        default_storage.delete(name)
        default_storage.save(name, ContentFile(data))
    rows.update(status=StudyReport.Status.DONE, done=len(STEPS), message="Done", html=html_name, bundle=bundle_name,
                bundle_sha256=digest, finished_at=timezone.now(), lease_expires_at=None)
    report.refresh_from_db()
    return report


def report_filename(report: StudyReport, kind: str) -> str:
    """The name a download is saved under: the experiment's name made safe, and the report's number."""
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in report.experiment.name).strip("-")
    safe = safe or "experiment"
    return f"{safe}-report-{report.pk}" + (".html" if kind == "html" else "-bundle.zip")

