"""The one Celery task: run a job by its id. Delivered at least once (acks late, requeued if the worker dies),
so it claims the job first and a second copy does nothing. Back-off: BULK_RETRY_BASE_SECONDS doubling per
attempt up to BULK_RETRY_MAX_SECONDS, with jitter, for at most BULK_MAX_ATTEMPTS attempts."""

import logging
import random

from celery import shared_task
from django.conf import settings
from django.db import InterfaceError, OperationalError, close_old_connections

from . import actions
from .runners import RUNNERS

logger = logging.getLogger(__name__)
# What a retry can mend: the database away (restarting, failing over), a deadlock, a serialisation failure.
TRANSIENT = (OperationalError, InterfaceError)


def backoff(attempt: int) -> float:
    ceiling = min(settings.BULK_RETRY_MAX_SECONDS, settings.BULK_RETRY_BASE_SECONDS * 2 ** max(attempt - 1, 0))
    return ceiling / 2 + random.uniform(0, ceiling / 2)


@shared_task(bind=True, name=actions.TASK, acks_late=True, reject_on_worker_lost=True, max_retries=None)
def run(self, job_id: str) -> str:
    try:
        job = actions.claim(job_id, redelivery=self.request.retries > 0)
    except TRANSIENT as error:  # cannot even claim: try again later (the job row is unchanged, so the sweep
        _drop_broken_connection(self)  # sends it again should these tries run out too)
        if self.request.retries >= settings.BULK_MAX_ATTEMPTS:
            raise
        raise self.retry(countdown=backoff(self.request.retries + 1), exc=error) from error
    if job is None:
        return "not claimed"
    runner = RUNNERS.get(job.kind)
    if runner is None:
        actions.bury(job, f"No runner for {job.kind!r} in this worker (is its app installed?).")
        return "dead"
    try:
        result = runner(job)
    except TRANSIENT as error:
        _drop_broken_connection(self)
        if job.attempts >= job.max_attempts:
            _bury_or_retry(self, job, error)
            return "dead"
        countdown = backoff(job.attempts)
        try:
            actions.will_retry(job, error, countdown)
        except TRANSIENT:
            logger.warning("bulk job %s: its retry could not be recorded (the database is away)", job.pk)
        logger.warning("bulk job %s attempt %s failed (%s): again in %.0f s", job.pk, job.attempts, error, countdown)
        raise self.retry(countdown=countdown, exc=error) from error
    except Exception as error:  # a failure no retry mends: IG see it in the dead-letter list
        logger.exception("bulk job %s failed", job.pk)
        _bury_or_retry(self, job, error)
        return "dead"
    actions.finish(job, result)
    return "done"


def _drop_broken_connection(task) -> None:
    """After a database failure, a connection the server dropped is not reused for the failure's own record.
    (Celery's Django fixup does the same between tasks; run in-process, by apply(), the caller's is left alone.)"""
    if not task.request.is_eager:
        close_old_connections()


def _bury_or_retry(task, job, error) -> None:
    """Dead-letter the job; should the database be away for that too, try the burial later."""
    try:
        actions.bury(job, error)
    except TRANSIENT as away:
        raise task.retry(countdown=backoff(job.attempts), exc=away) from away
