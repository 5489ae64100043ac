"""FHIR's asynchronous request pattern for Bundles (R5's async-bundle, on R4: RFC 7240's `Prefer: respond-async`).

POST [base] with `Prefer: respond-async`: 202 Accepted at once, `Content-Location` naming the job's status URL
([base]/_async/<job>); the worker imports it as the synchronous call would. GET the status URL: 202 with
`X-Progress` and `Retry-After` while it waits or runs; 200 with a batch-response Bundle once done, its one entry
the synchronous answer (`response.status` and, as its resource, the Bundle or OperationOutcome); 500 with an
OperationOutcome if it could not be completed (nothing of it applied; IG have it in the dead-letter list).
DELETE the status URL cancels a job not yet running (202); a cancelled job's URL answers 404, like one unknown
or another organisation's. `Idempotency-Key` names the submission: sent again with the same body, the same job
answers; with another body, 422. Without a broker (CELERY_BROKER_URL) the preference is not applied: the
answer is the synchronous one, and no `Preference-Applied` header says otherwise."""

import datetime

from django.urls import reverse
from django.utils import timezone

from bulk import actions as bulk
from bulk.models import Job

from . import responses
from .bulkload import looks_like_bundle, submit_body
from .outcome import error, information

PREFERENCE = "respond-async"
POLL_SECONDS = 5


def wants_async(request) -> bool:
    preferences = {part.strip().split("=")[0].lower() for part in request.headers.get("Prefer", "").split(",")}
    return PREFERENCE in preferences and bulk.enabled()


def status_url(request, job: Job) -> str:
    return request.build_absolute_uri(reverse("fhir:async-status", args=[job.pk]))


def accept(request, organisation, channel, body: bytes):
    """Queue the body (a cheap check first: an obvious non-Bundle is answered 400 now, not later)."""
    content_type = request.META.get("CONTENT_TYPE") or request.content_type or ""
    problem = looks_like_bundle(body, content_type)
    if problem:
        return None, responses.outcome_response(request, [error("invalid", problem)], 400)
    key = request.headers.get("Idempotency-Key", "").strip()
    if len(key) > 200:
        return None, responses.outcome_response(
            request, [error("invalid", "Idempotency-Key: at most 200 characters.")], 400
        )
    try:
        job, created = submit_body(body, content_type, organisation=organisation, channel=channel, submission_id=key)
    except bulk.KeyReused:
        issue = error("duplicate", "This Idempotency-Key was used for a different body: give each submission its own.")
        return None, responses.outcome_response(request, [issue], 422)
    text = "Queued" if created else "Already submitted with this Idempotency-Key"
    issue = information(f"{text}: job {job.pk}. Poll its Content-Location for the result.")
    return job, responses.outcome_response(
        request, [issue], 202, Content_Location=status_url(request, job), Preference_Applied=PREFERENCE
    )


def job_of(organisation, job_id) -> Job | None:
    """The organisation's own job, else None (another's and an unknown one look the same)."""
    return (
        Job.objects.filter(pk=job_id, kind=Job.Kind.FHIR_IMPORT, organisation=organisation, channel__answer="http")
        .exclude(status=Job.Status.CANCELLED)
        .first()
    )


def status(request, job: Job):
    if job.status in Job.OPEN:
        wait = POLL_SECONDS
        if job.next_attempt_at:
            wait = max(1, int((job.next_attempt_at - timezone.now()) / datetime.timedelta(seconds=1)))
        return responses.outcome_response(
            request,
            [information(f"Job {job.pk} is {job.progress}.")],
            202,
            X_Progress=job.progress[:200],
            Retry_After=str(wait),
        )
    if job.status == Job.Status.DEAD:
        issue = error(
            "exception",
            f"Job {job.pk} could not be completed and nothing of it was applied; carerecord's information governance "
            "team have it in the dead-letter list. Send it again later, or ask them.",
        )
        return responses.outcome_response(request, [issue], 500)
    answer = job.result
    reason = responses.HTTP_STATUS.get(answer["status"], str(answer["status"]))
    entry = {"response": {"status": reason}, "resource": answer["body"]}
    return responses.bundle(request, {"resourceType": "Bundle", "type": "batch-response", "entry": [entry]})


def cancel(request, job: Job, channel):
    try:
        bulk.cancel(job, by=channel.actor)
    except bulk.NotAllowed as exc:
        return responses.outcome_response(request, [error("conflict", str(exc))], 409)
    return responses.outcome_response(request, [information(f"Job {job.pk} cancelled.")], 202)
