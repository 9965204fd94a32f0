from django.urls import path

from . import views

app_name = "dashboards"

urlpatterns = [
    path("cohort/", views.cohort_dashboard, name="cohort"),
    path("annotation/", views.annotation_dashboard, name="annotation"),
]
