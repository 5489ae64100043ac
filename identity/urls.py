"""Sign-in (single sign-on's own steps) and launch in context."""

from django.urls import path

from . import views

urlpatterns = [
    path("launch/", views.launch, name="launch"),
    path("launch/continue/", views.launch_continue, name="launch-continue"),
]
