from django.urls import path

from . import views

app_name = "demo"

urlpatterns = [path("seed/", views.demo_start, name="seed")]
