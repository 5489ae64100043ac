from django.apps import AppConfig


class FhirApiConfig(AppConfig):
    name = "fhirapi"
    label = "fhir"
    verbose_name = "FHIR API"
