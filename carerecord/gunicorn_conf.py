"""gunicorn settings for production: `gunicorn carerecord.wsgi --config python:carerecord.gunicorn_conf`.

With PROMETHEUS_MULTIPROC_DIR set (carerecord/metrics.py), each worker writes its metrics to files there; a worker
that exits has its live gauges removed, so /metrics adds up only what the running workers and the work already
counted say."""

import os


def child_exit(server, worker):
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
