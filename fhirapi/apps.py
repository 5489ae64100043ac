from django.apps import AppConfig


class FhirApiConfig(AppConfig):
    name = "fhirapi"
    label = "fhir"
    verbose_name = "FHIR API"

    def ready(self):
        from sharing.changes import register_revisions

        from .revisions import revised_since

        register_revisions(revised_since)

        from bulk.models import Job
        from bulk.runners import register

        from .bulkload import run

        register(Job.Kind.FHIR_IMPORT, run)
