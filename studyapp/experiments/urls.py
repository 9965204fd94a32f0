from django.urls import path

from . import views
from .prediction_views import clip_predict

app_name = "experiments"

urlpatterns = [
    path("", views.index, name="index"),
    path("splits/<int:pk>/", views.split_detail, name="split"),
    path("splits/<int:pk>/lock/", views.split_lock, name="split-lock"),
    path("splits/<int:pk>/estimate/", views.launch_estimate, name="launch-estimate"),
    path("<int:pk>/", views.experiment_detail, name="experiment"),
    path("runs/<int:pk>/cancel/", views.run_cancel, name="run-cancel"),
    path("clips/<int:pk>/predict/", clip_predict, name="clip-predict"),
]
