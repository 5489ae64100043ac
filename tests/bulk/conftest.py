"""A real Celery worker on the real Redis (127.0.0.1:6379, database 3), in a thread of the test process, on a
queue of its own per test: what `make worker` runs, taking the jobs the tests submit through the real broker."""

import queue as queues
import uuid
from dataclasses import dataclass

import pytest


@dataclass
class Worker:
    finished: queues.Queue
    name: str

    def wait(self, timeout: float = 60) -> str:
        """The next task run's outcome ("done", "dead", "not claimed"): waited for on the worker's own signal,
        not by polling the database."""
        return self.finished.get(timeout=timeout)


@pytest.fixture
def worker(transactional_db, settings):
    from celery.contrib.testing.worker import start_worker
    from celery.signals import task_postrun

    from carerecord.celery import app

    url, name = "redis://127.0.0.1:6379/3", f"bulk-test-{uuid.uuid4().hex[:10]}"
    settings.CELERY_BROKER_URL, settings.BULK_QUEUE = url, name
    settings.BULK_RETRY_BASE_SECONDS, settings.BULK_RETRY_MAX_SECONDS = 0.2, 1
    app.conf.broker_url = url
    finished = queues.Queue()

    def on_postrun(retval=None, **_):
        finished.put(retval)

    task_postrun.connect(on_postrun, weak=False)
    try:
        with start_worker(
            app,
            pool="solo",
            concurrency=1,
            queues=[name],
            perform_ping_check=False,
            loglevel="WARNING",
            shutdown_timeout=10,
        ):
            yield Worker(finished, name)
    finally:
        task_postrun.disconnect(on_postrun)
