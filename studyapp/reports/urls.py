from django.urls import path

from . import views

app_name = "reports"

urlpatterns = [
    path("experiments/<int:pk>/generate/", views.report_generate, name="generate"),
    path("experiments/<int:pk>/status/", views.report_status, name="status"),
    path("<int:pk>/<str:kind>/", views.report_download, name="download"),
]
