"""WSGI entry point, for gunicorn: `gunicorn carerecord.wsgi`.

Each worker imports this after it forks, sets Django up, loads the URLconf (and with it every view module) and
then freezes what it has loaded out of the cyclic garbage collector's scans (`freeze_loaded`): a full collection
otherwise walked every object of Django and the FHIR models' classes, ~12 ms of a heavy record summary's time in
collections and its slowest pages' pauses; frozen, ~4 ms (2026-12-07, docs/SCALING.md)."""

import gc
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "carerecord.settings")
application = get_wsgi_application()


def freeze_loaded() -> None:
    """Everything loaded so far — settings, apps, models, the URLconf's views — moved to the collector's permanent
    generation after one collection (so no garbage is frozen). Cycles made later are collected as before."""
    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018 - imports every view module now, before the freeze
    gc.collect()
    gc.freeze()


freeze_loaded()
