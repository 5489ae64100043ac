"""The Celery app of the bulk-load queue (bulk/): configured from Django's settings (CELERY_*), its tasks found
in the installed apps. Run a worker with `make worker` (or `celery -A carerecord worker -Q bulk`)."""

import os

from celery import Celery
from celery.signals import worker_ready

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "carerecord.settings")

app = Celery("carerecord")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_ready.connect
def send_what_waits(**_):
    """A worker starting (after a broker restart, say) sends again what waits: Redis may have lost the messages."""
    from bulk import actions

    if actions.enabled():
        actions.sweep()
