from django.urls import path

from . import views

app_name = "explanations"

urlpatterns = [
    path("experiments/<int:pk>/", views.gallery, name="gallery"),
    path("runs/<int:pk>/explain/", views.run_explain, name="run-explain"),
    path("jobs/<int:pk>/cancel/", views.job_cancel, name="job-cancel"),
    path("frames/<int:pk>/<str:kind>/", views.frame_file, name="frame-file"),
]
