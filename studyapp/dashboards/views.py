"""Dashboard pages: the cohort at a glance (clinical roles) and annotation progress and agreement (those who
don't rate blind). The experiment dashboard is the experiment page itself (experiment_views.py)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required, permission_required
from django.shortcuts import render

from studyapp.cohort.models import CsaMeasurement

from . import panels, selectors, tables
from .figures import DataTable


@login_required
@permission_required("cohort.view_demographics", raise_exception=True)
def cohort_dashboard(request):
    data = selectors.cohort_dashboard_data()
    settings = data["settings"]
    method_label = CsaMeasurement.Method(settings.csa_baseline_method).label.lower()
    records = panels.hand_records(data["hands"])
    table_one = tables.table_one(records)
    age_panel, age_rows = panels.age_bands(records)
    return render(request, "dashboards/cohort.html", {
        "flow": panels.figures.flow_figure(data["flow"]),
        "table_one": table_one,
        "table_one_csv": DataTable(["variable", "summary", "control", "CTS", "test", "p", "SMD"],
                                   tables.table_one_csv_rows(table_one)),
        "csa_panels": [panels.csa_by_group(records, data["threshold"], method_label=method_label),
                       panels.csa_by_stage(records, data["threshold"], method_label=method_label)],
        "threshold": data["threshold"],
        "age_panel": age_panel, "age_rows": age_rows,
        "enrollment": panels.enrollment(data["hands"]),
        "review": panels.review_list(data["hands"], dml_ms=settings.dml_threshold_ms,
                                     sncv_m_s=settings.sncv_threshold_m_s),
        "method_label": method_label,
    })


@login_required
# Every rater's work side by side: for those who don't rate blind (coordinator, PI, admin).
@permission_required("annotations.view_all_raters", raise_exception=True)
def annotation_dashboard(request):
    data = selectors.annotation_dashboard_data()
    clip_panel, waiting = panels.clip_progress(data["clips"])
    return render(request, "dashboards/annotation.html", {
        "clip_panel": clip_panel, "waiting": waiting, "clips": data["clips"],
        "annotator_panel": panels.annotator_progress(data["annotators"]),
        "roi": data["roi"], "csa": data["csa"],
        "agreement_panels": panels.agreement_panels(data["roi"], data["csa"]),
    })
