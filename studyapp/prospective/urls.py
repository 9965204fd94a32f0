from django.urls import path

from . import views

app_name = "prospective"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("models/<int:pk>/", views.dashboard, name="model"),
    path("freeze/", views.freeze, name="freeze"),
]
