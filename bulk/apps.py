from django.apps import AppConfig


class BulkConfig(AppConfig):
    """Bulk loads through a queue (Celery on Redis): large FHIR imports and HL7 v2 replays run by a worker, with
    progress, retries with back-off, one job per submission id, and a dead-letter list in admin. What each kind
    of job does is registered by the app that knows how (fhirapi, feeds): this app keeps only the bookkeeping."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "bulk"
    verbose_name = "Bulk loads (the queue)"
