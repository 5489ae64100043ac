"""The WSGI entry point gunicorn's workers import: the application, with what it loaded frozen out of the
collector's scans."""

import gc
import importlib
import sys


def test_a_worker_freezes_what_it_loaded_out_of_the_collectors_scans():
    gc.unfreeze()
    sys.modules.pop("carerecord.wsgi", None)
    try:
        wsgi = importlib.import_module("carerecord.wsgi")
        assert callable(wsgi.application)
        assert gc.get_freeze_count() > 10_000  # Django, the apps and their views: tens of thousands of objects
    finally:
        gc.unfreeze()
