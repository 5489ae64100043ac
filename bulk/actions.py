"""Every change to a bulk load, audited: submitted, finished, dead-lettered, sent again, cancelled. The API,
the commands, admin and the worker all come here. A job's message is sent once its row is committed; if the
broker cannot be reached then, the job waits and `sweep` (the worker at start, `bulk_jobs --dispatch` from cron)
sends it later: nothing submitted is lost with a message."""

import datetime
import hashlib
import logging
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from audit.names import Action
from audit.redaction import without_patient_identifiers
from audit.writers import audit

from .models import Job, JobInput

logger = logging.getLogger(__name__)
TASK = "bulk.run"
Status = Job.Status


@dataclass(frozen=True)
class Requester:
    """Whom the audit trail names for a job: an account (pk and email) or a partner system or command (a label)."""

    email: str
    pk: int | None = None


@dataclass(frozen=True)
class Input:
    name: str
    content_type: str
    data: bytes


class KeyReused(Exception):
    """A submission id already names a job given something else."""

    def __init__(self, job: Job):
        super().__init__(f"Submission id {job.submission_id!r} already names job {job.pk}, given other content.")
        self.job = job


class NotAllowed(Exception):
    pass


def enabled() -> bool:
    """The queue runs where a broker is configured (CELERY_BROKER_URL); elsewhere everything is synchronous."""
    return bool(settings.CELERY_BROKER_URL)


def requester_of(job: Job) -> Requester:
    return Requester(email=job.requested_by, pk=job.requested_by_user_id)


def digest_of(kind: str, inputs: list[Input], params: dict) -> str:
    digest = hashlib.sha256(kind.encode())
    digest.update(repr(sorted(params.items())).encode())
    for item in inputs:
        digest.update(b"\x00" + item.content_type.encode() + b"\x00" + hashlib.sha256(item.data).digest())
    return digest.hexdigest()


def submit(
    *,
    kind: str,
    by: Requester,
    inputs: list[Input] = (),
    total: int,
    organisation=None,
    token=None,
    submission_id: str = "",
    channel: dict | None = None,
    params: dict | None = None,
) -> tuple[Job, bool]:
    """A job for the queue, or the one this submission id already names (False: nothing new). KeyReused when
    that job was given other content: a sender's id names one submission."""
    params = params or {}
    digest = digest_of(kind, list(inputs), params)
    scope = organisation.ods_code if organisation is not None else ""
    if submission_id:
        existing = _named(kind, scope, submission_id, digest)
        if existing is not None:
            return existing, False
    try:
        with transaction.atomic():
            job = Job.objects.create(
                kind=kind,
                organisation=organisation,
                scope=scope,
                submission_id=submission_id[:200],
                digest=digest,
                requested_by=by.email[:200],
                requested_by_user_id=by.pk,
                token=token,
                channel=channel or {},
                params=params,
                total=total,
                max_attempts=settings.BULK_MAX_ATTEMPTS,
            )
            JobInput.objects.bulk_create(
                JobInput(
                    job=job,
                    seq=seq,
                    name=item.name[:500],
                    content_type=item.content_type[:200],
                    size=len(item.data),
                    body=JobInput.pack(item.data),
                )
                for seq, item in enumerate(inputs)
            )
            audit(
                by=by,
                action=Action.BULK_QUEUED,
                target=job,
                kind=kind,
                organisation=scope,
                submission_id=submission_id,
                inputs=len(inputs),
                bytes=sum(len(item.data) for item in inputs),
                total=total,
            )
            transaction.on_commit(lambda: send(job.pk), robust=True)
    except IntegrityError:  # the same submission id, submitted at the same moment: the other one won
        existing = _named(kind, scope, submission_id, digest) if submission_id else None
        if existing is None:
            raise
        return existing, False
    return job, True


def _named(kind, scope, submission_id, digest) -> Job | None:
    existing = Job.objects.filter(kind=kind, scope=scope, submission_id=submission_id[:200]).first()
    if existing is not None and existing.digest != digest:
        raise KeyReused(existing)
    return existing


def send(job_id) -> None:
    """Put the job's message on the queue (the broker's own retries apply; failing, the job waits for `sweep`)."""
    from celery import current_app

    current_app.send_task(TASK, args=[str(job_id)], queue=settings.BULK_QUEUE)
    Job.objects.filter(pk=job_id).update(dispatched_at=timezone.now())


def sweep(*, now=None) -> int:
    """Send again the messages of jobs that wait longer than BULK_REDISPATCH_SECONDS after theirs was sent (lost
    with a broker restart, or never sent), and of running jobs silent past BULK_STALE_SECONDS (their worker died).
    A job claimed twice runs once (`claim`)."""
    now = now or timezone.now()
    quiet = now - datetime.timedelta(seconds=settings.BULK_REDISPATCH_SECONDS)
    stale = now - datetime.timedelta(seconds=settings.BULK_STALE_SECONDS)
    due = Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=quiet)
    waiting = Q(status__in=Job.WAITING) & (Q(dispatched_at__isnull=True) | Q(dispatched_at__lte=quiet)) & due
    dead_worker = Q(status=Status.RUNNING, heartbeat_at__lte=stale)
    sent = 0
    for job_id in Job.objects.filter(waiting | dead_worker).order_by("created_at").values_list("pk", flat=True):
        send(job_id)
        sent += 1
    return sent


def claim(job_id, *, redelivery: bool = False, now=None) -> Job | None:
    """Take the job to run it: one worker only, whatever copies of its message there are. `redelivery`: the
    task's own retry, which may find the job still marked running (its failure could not be written)."""
    now = now or timezone.now()
    stale = now - datetime.timedelta(seconds=settings.BULK_STALE_SECONDS)
    statuses = [*Job.WAITING, *([Status.RUNNING] if redelivery else [])]
    claimable = Q(status__in=statuses) | Q(status=Status.RUNNING, heartbeat_at__lte=stale)
    updated = (
        Job.objects.filter(pk=job_id)
        .filter(claimable)
        .update(
            status=Status.RUNNING,
            attempts=F("attempts") + 1,
            started_at=Coalesce("started_at", now),
            heartbeat_at=now,
            next_attempt_at=None,
        )
    )
    return Job.objects.select_related("organisation", "token__organisation").get(pk=job_id) if updated else None


def advance(job: Job, done: int, result: dict | None = None) -> None:
    """A part or message finished: where a retry resumes, and the heartbeat that tells a live worker."""
    job.done, job.heartbeat_at = done, timezone.now()
    fields = ["done", "heartbeat_at"]
    if result is not None:
        job.result = result
        fields.append("result")
    job.save(update_fields=fields)


def error_text(error: BaseException) -> str:
    return without_patient_identifiers(f"{type(error).__name__}: {error}")[:1000]


@transaction.atomic
def finish(job: Job, result: dict) -> Job:
    job.status, job.result, job.done, job.finished_at = Status.DONE, result, job.total, timezone.now()
    job.heartbeat_at = job.finished_at
    job.save(update_fields=["status", "result", "done", "finished_at", "heartbeat_at"])
    JobInput.objects.filter(job=job).update(body=b"")
    audit(
        by=requester_of(job),
        action=Action.BULK_DONE,
        target=job,
        kind=job.kind,
        attempts=job.attempts,
        summary=str(result.get("summary", ""))[:500],
    )
    return job


def will_retry(job: Job, error: BaseException, countdown: float) -> None:
    job.status, job.last_error = Status.RETRYING, error_text(error)
    job.next_attempt_at = timezone.now() + datetime.timedelta(seconds=countdown)
    job.save(update_fields=["status", "last_error", "next_attempt_at"])


@transaction.atomic
def bury(job: Job, error: BaseException | str) -> Job:
    """Into the dead-letter list: retries spent, or an error that no retry mends. Its inputs stay for IG's retry."""
    job.status, job.finished_at = Status.DEAD, timezone.now()
    job.last_error = error if isinstance(error, str) else error_text(error)
    job.save(update_fields=["status", "finished_at", "last_error"])
    audit(
        by=requester_of(job),
        action=Action.BULK_DEAD,
        target=job,
        kind=job.kind,
        attempts=job.attempts,
        error=job.last_error[:200],
    )
    logger.error("bulk job %s dead-lettered after %s attempts: %s", job.pk, job.attempts, job.last_error)
    return job


@transaction.atomic
def retry(job: Job, *, by) -> Job:
    """IG send a dead letter again after a fix: its attempts start over, from the part it had reached."""
    job = Job.objects.select_for_update().get(pk=job.pk)
    if job.status != Status.DEAD:
        raise NotAllowed(f"Job {job.pk} is {job.get_status_display().lower()}: only a dead letter is sent again.")
    job.status, job.attempts, job.finished_at, job.next_attempt_at = Status.QUEUED, 0, None, None
    job.save(update_fields=["status", "attempts", "finished_at", "next_attempt_at"])
    audit(by=by, action=Action.BULK_RETRIED, target=job, kind=job.kind, last_error=job.last_error[:200])
    transaction.on_commit(lambda: send(job.pk), robust=True)
    return job


@transaction.atomic
def cancel(job: Job, *, by) -> Job:
    """A job not yet running is cancelled (its sender's DELETE, or IG): nothing of it runs, its inputs are emptied."""
    job = Job.objects.select_for_update().get(pk=job.pk)
    if job.status not in Job.WAITING:
        raise NotAllowed(f"Job {job.pk} is {job.get_status_display().lower()}: only a waiting job is cancelled.")
    job.status, job.finished_at = Status.CANCELLED, timezone.now()
    job.save(update_fields=["status", "finished_at"])
    JobInput.objects.filter(job=job).update(body=b"")
    audit(by=by, action=Action.BULK_CANCELLED, target=job, kind=job.kind, done=job.done, total=job.total)
    return job
