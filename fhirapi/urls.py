from django.urls import path

from . import views

app_name = "fhir"

urlpatterns = [
    path("", views.base, name="base"),
    path("metadata", views.metadata, name="metadata"),
    path("$process-message", views.process_message, name="process-message"),
    path("_async/<uuid:job_id>", views.async_status, name="async-status"),
    path("Patient/_search", views.patient_search, name="patient-search"),
    path("Patient/<str:patient_id>/$everything", views.everything, name="everything"),
    path("<str:resource_type>/<str:resource_id>/_history", views.history_instance, name="history"),
    path("<str:resource_type>/<str:resource_id>/_history/<str:version_id>", views.vread, name="vread"),
    path("<str:resource_type>", views.resource_type, name="type"),
    path("<str:resource_type>/<str:resource_id>", views.instance, name="instance"),
]
