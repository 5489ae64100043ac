# The bulk-load queue's Celery app, loaded with Django so that `shared_task` and `send_task` find it.
from .celery import app as celery_app

__all__ = ["celery_app"]
