from django.urls import path

from . import views

urlpatterns = [
    path("<uuid:patient_id>/break-glass/", views.break_glass, name="break-glass"),
]
