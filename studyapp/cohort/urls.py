from django.urls import path

from . import views

app_name = "cohort"

urlpatterns = [
    path("", views.hand_list, name="hand-list"),
    path("participants/new/", views.participant_create, name="participant-create"),
    path("participants/<int:pk>/edit/", views.participant_edit, name="participant-edit"),
    path("participants/<int:participant_pk>/hands/", views.hand_add, name="hand-add"),
    path("hands/<int:pk>/", views.hand_detail, name="hand-detail"),
    path("hands/<int:pk>/eps/", views.eps_exam_add, name="eps-add"),
    path("hands/<int:pk>/eps/preview/", views.eps_preview, name="eps-preview"),
    path("hands/<int:pk>/eps/<int:exam_pk>/edit/", views.eps_exam_edit, name="eps-edit"),
    path("hands/<int:pk>/eps/<int:exam_pk>/delete/", views.eps_exam_delete, name="eps-delete"),
    path("hands/<int:pk>/csa/", views.csa_add, name="csa-add"),
    path("hands/<int:pk>/eligibility/", views.hand_exclusion, name="hand-exclusion"),
    path("hands/<int:pk>/history/", views.hand_history, name="hand-history"),
    path("restage/", views.hands_restage, name="restage"),
    path("import/", views.cohort_import, name="import"),
    path("export.csv", views.cohort_export, name="export"),
    path("settings/", views.study_settings, name="study-settings"),
]
