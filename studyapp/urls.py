from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from studyapp.accounts.views import LoginView

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="cohort:hand-list", permanent=False), name="home"),
    path("accounts/login/", LoginView.as_view(), name="login"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("admin/", admin.site.urls),
    path("cohort/", include("studyapp.cohort.urls")),
    path("clips/", include("studyapp.clips.urls")),
    path("sites/", include("studyapp.sites.urls")),
    path("demo/", include("studyapp.demo.urls")),
    path("experiments/", include("studyapp.experiments.urls")),
    path("explanations/", include("studyapp.explanations.urls")),
    path("dashboards/", include("studyapp.dashboards.urls")),
    path("prospective/", include("studyapp.prospective.urls")),
    path("reports/", include("studyapp.reports.urls")),
    path("api/", include("studyapp.api_urls")),
]
