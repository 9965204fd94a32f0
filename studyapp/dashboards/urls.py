from django.urls import path

from . import views

app_name = "dashboards"

urlpatterns = [
    path("cohort/", views.cohort_dashboard, name="cohort"),
    path("annotation/", views.annotation_dashboard, name="annotation"),
    path("experiments/", views.experiment_index, name="experiments"),
    path("experiments/<int:pk>/", views.experiment_dashboard, name="experiment"),
    path("experiments/<int:pk>/report/", views.report_create, name="report-create"),
    path("experiments/<int:pk>/report/status/", views.report_status, name="report-status"),
    path("experiments/<int:pk>/report.html", views.report_download, {"kind": "html"}, name="report-html"),
    path("experiments/<int:pk>/bundle.zip", views.report_download, {"kind": "bundle"}, name="report-bundle"),
]
