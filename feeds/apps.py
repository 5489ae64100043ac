from django.apps import AppConfig


class FeedsConfig(AppConfig):
    """HL7 v2 feeds from hospitals: configured connections, every message kept, ADT and ORU applied as FHIR."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "feeds"
    verbose_name = "HL7 v2 feeds"

    def ready(self):
        from bulk.models import Job
        from bulk.runners import register

        from .replays import run

        register(Job.Kind.HL7_REPLAY, run)
