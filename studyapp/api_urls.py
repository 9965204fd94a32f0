"""The REST API: one router for every app's resources, plus the schema and its docs."""

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerSplitView
from rest_framework.routers import DefaultRouter

from studyapp.accounts.views import TokenView
from studyapp.annotations import api as annotations_api
from studyapp.clips import api as clips_api
from studyapp.common.security import csp_override
from studyapp.cohort import api as cohort_api
from studyapp.experiments import api as experiments_api
from studyapp.explanations import api as explanations_api
from studyapp.ops import api as ops_api
from studyapp.sites import api as sites_api
from studyapp.prospective import api as prospective_api

# ReDoc starts itself with an inline script and renders in a blob: worker: its page alone allows both.
redoc_view = csp_override(SpectacularRedocView.as_view(url_name="schema"), "; ".join((
    "default-src 'self'", "script-src 'self' 'unsafe-inline'", "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data:", "font-src 'self' data:", "worker-src blob:", "object-src 'none'",
    "frame-ancestors 'none'")))

router = DefaultRouter()
cohort_api.register(router)
clips_api.register(router)
annotations_api.register(router)
experiments_api.register(router)
explanations_api.register(router)
sites_api.register(router)
prospective_api.register(router)

urlpatterns = [
    path("cohort/flow/", cohort_api.CohortFlowView.as_view(), name="cohort-flow"),
    path("cohort/restage/", cohort_api.RestageView.as_view(), name="cohort-restage"),
    path("agreement/", annotations_api.AgreementView.as_view(), name="agreement"),
    path("explanation-summaries/", explanations_api.ExplanationSummaryView.as_view(), name="explanation-summaries"),
    path("prospective/predictions/", prospective_api.PredictionListView.as_view(), name="prospective-predictions"),
    path("prospective/dashboard/", prospective_api.DashboardView.as_view(), name="prospective-dashboard"),
    path("health/", ops_api.HealthView.as_view(), name="health"),
    path("jobs/<int:pk>/", ops_api.BackgroundJobView.as_view(), name="backgroundjob-detail"),
    path("ops/ping-worker/", ops_api.WorkerPingView.as_view(), name="ping-worker"),
    path("auth/token/", TokenView.as_view(), name="api-token"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves Swagger UI's start-up script as a file, which the content security policy allows.
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="api-docs"),
    path("redoc/", redoc_view, name="api-redoc"),
    path("", include(router.urls)),
]
