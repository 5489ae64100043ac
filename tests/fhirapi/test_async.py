"""FHIR's asynchronous pattern for Bundles (fhirapi/asynchronous.py) without a worker: what is answered at once,
who may poll, idempotency by Idempotency-Key, cancelling, and each state of a job as its status URL shows it.
The worker end to end: tests/bulk/test_worker.py."""

import json

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from audit.names import Action
from bulk import actions as bulk
from bulk.models import Job
from directory.actions import create_api_token
from patients.models import Patient
from tests import factories

from .conftest import bundle, patient_resource

pytestmark = pytest.mark.django_db
ASYNC = {"HTTP_PREFER": "respond-async"}


def _send(api, token, body=None, **extra):
    return api.post("/fhir/", body or bundle("batch", patient_resource()), token=token, **ASYNC, **extra)


def _job_of(response) -> Job:
    return Job.objects.get(pk=response["Content-Location"].rstrip("/").rsplit("/", 1)[1])


def test_without_a_broker_the_preference_is_not_applied(api, sender_token, settings):
    settings.CELERY_BROKER_URL = ""
    response = _send(api, sender_token)
    assert response.status_code == 200
    assert "Preference-Applied" not in response
    assert Patient.objects.filter(nhs_number="9990000018").exists()
    assert not Job.objects.exists()


def test_queued_at_once_with_a_status_url_and_nothing_applied_yet(api, sender_token, sender, queue_on):
    response = _send(api, sender_token)
    assert response.status_code == 202
    assert response["Preference-Applied"] == "respond-async"
    job = _job_of(response)
    assert (job.status, job.organisation, job.total) == (Job.Status.QUEUED, sender, 1)
    assert job.requested_by.startswith("api-token:")
    assert not Patient.objects.filter(nhs_number="9990000018").exists()
    queued = AuditEvent.objects.get(action=Action.BULK_QUEUED)
    assert (queued.target_id, queued.actor_email, queued.detail["organisation"]) == (
        str(job.pk),
        job.requested_by,
        sender.ods_code,
    )
    polled = api.get(response["Content-Location"], token=sender_token)
    assert polled.status_code == 202
    assert polled["X-Progress"] == "queued: 0 of 1 parts"
    assert polled["Retry-After"] == "5"


def test_the_same_idempotency_key_and_body_is_the_same_job(api, sender_token, queue_on):
    first = _send(api, sender_token, HTTP_IDEMPOTENCY_KEY="epr-2026-12-07-001")
    again = _send(api, sender_token, HTTP_IDEMPOTENCY_KEY="epr-2026-12-07-001")
    assert again.status_code == 202
    assert again["Content-Location"] == first["Content-Location"]
    assert Job.objects.count() == 1
    assert AuditEvent.objects.filter(action=Action.BULK_QUEUED).count() == 1


def test_an_idempotency_key_reused_for_another_body_is_refused(api, sender_token, queue_on):
    _send(api, sender_token, HTTP_IDEMPOTENCY_KEY="k1")
    other = _send(api, sender_token, bundle("batch", patient_resource(family="Else")), HTTP_IDEMPOTENCY_KEY="k1")
    assert other.status_code == 422
    assert "different body" in other.json()["issue"][0]["diagnostics"]
    assert Job.objects.count() == 1


def test_another_organisation_may_use_the_same_key(api, sender_token, queue_on):
    _send(api, sender_token, HTTP_IDEMPOTENCY_KEY="k1")
    _, other_token = create_api_token(by=None, name="Other EPR", organisation=factories.OrganisationFactory())
    assert _send(api, other_token, HTTP_IDEMPOTENCY_KEY="k1").status_code == 202
    assert Job.objects.count() == 2


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b"{not json", "not JSON"),
        (json.dumps(patient_resource()).encode(), "Only a Bundle"),
        (json.dumps({"resourceType": "Bundle", "type": "searchset"}).encode(), "searchset Bundle cannot"),
    ],
)
def test_what_is_plainly_not_an_importable_bundle_is_refused_at_once(api, sender_token, queue_on, body, words):
    response = _send(api, sender_token, body)
    assert response.status_code == 400
    assert words in response.json()["issue"][0]["diagnostics"]
    assert not Job.objects.exists()


def test_who_may_send_asynchronously(api, sender_token, reader_token, queue_on, sender):
    assert _send(api, None).status_code == 401
    assert _send(api, reader_token).status_code == 403  # a professional's token reads; it sends nothing in
    sender.active = False
    sender.save()
    assert _send(api, sender_token).status_code == 403
    assert not Job.objects.exists()


def test_only_the_sending_organisation_sees_its_job(api, sender_token, reader_token, queue_on):
    location = _send(api, sender_token)["Content-Location"]
    _, other_token = create_api_token(by=None, name="Other EPR", organisation=factories.OrganisationFactory())
    assert api.get(location, token=other_token).status_code == 404
    assert api.get(location, token=reader_token).status_code == 403
    assert api.get(location).status_code == 401
    assert (
        api.get(
            location.replace(location[-36:], "00000000-0000-4000-8000-000000000000"), token=sender_token
        ).status_code
        == 404
    )


def test_a_waiting_job_is_cancelled_by_delete_then_gone(api, client, sender_token, queue_on):
    response = _send(api, sender_token)
    job = _job_of(response)
    cancelled = client.delete(response["Content-Location"], HTTP_AUTHORIZATION=f"Bearer {sender_token}")
    assert cancelled.status_code == 202
    job.refresh_from_db()
    assert job.status == Job.Status.CANCELLED
    assert bytes(job.inputs.get().body) == b""  # nothing of it is kept
    assert AuditEvent.objects.filter(action=Action.BULK_CANCELLED, target_id=str(job.pk)).exists()
    assert api.get(response["Content-Location"], token=sender_token).status_code == 404


def test_a_job_that_runs_or_ran_is_not_cancelled(api, client, sender_token, queue_on):
    response = _send(api, sender_token)
    bulk.claim(_job_of(response).pk)
    refused = client.delete(response["Content-Location"], HTTP_AUTHORIZATION=f"Bearer {sender_token}")
    assert refused.status_code == 409
    polled = api.get(response["Content-Location"], token=sender_token)
    assert (polled.status_code, polled["X-Progress"]) == (202, "running: 0 of 1 parts")


def test_a_finished_job_answers_what_the_synchronous_call_would_have(api, sender_token, queue_on):
    """The worker's runner, called here in-process: the poll's 200 carries the synchronous answer inside a
    batch-response Bundle (R5 async-bundle), in the format the poll asks for."""
    from fhirapi.bulkload import run

    response = _send(api, sender_token)
    job = bulk.claim(_job_of(response).pk)
    bulk.finish(job, run(job))
    polled = api.get(response["Content-Location"], token=sender_token)
    assert polled.status_code == 200
    outer = polled.json()
    assert outer["type"] == "batch-response"
    assert outer["entry"][0]["response"]["status"] == "200 OK"
    inner = outer["entry"][0]["resource"]
    assert inner["type"] == "batch-response"
    assert inner["entry"][0]["response"]["status"] == "201 Created"
    assert inner["entry"][0]["response"]["location"].startswith("Patient/")
    assert Patient.objects.filter(nhs_number="9990000018").exists()
    job.refresh_from_db()
    assert bytes(job.inputs.get().body) == b""  # done: the body is not kept (the import keeps each resource)
    as_xml = api.get(response["Content-Location"], token=sender_token, HTTP_ACCEPT="application/fhir+xml")
    assert as_xml.status_code == 200
    assert b"<Bundle" in as_xml.content and b"201 Created" in as_xml.content


def test_a_body_the_worker_cannot_read_is_answered_400_in_the_result(api, sender_token, queue_on):
    from fhirapi.bulkload import run

    response = _send(
        api,
        sender_token,
        b"<Bundle xmlns='http://hl7.org/fhir'><type value='batch'/><entry><resource>",  # cut short
        content_type="application/fhir+xml",
    )
    job = bulk.claim(_job_of(response).pk)
    bulk.finish(job, run(job))
    inner = api.get(response["Content-Location"], token=sender_token).json()["entry"][0]
    assert inner["response"]["status"] == "400 Bad Request"
    assert inner["resource"]["resourceType"] == "OperationOutcome"


@pytest.mark.hazard("H-05")
def test_a_dead_letter_answers_500_and_says_nothing_was_applied(api, sender_token, queue_on):
    response = _send(api, sender_token)
    job = bulk.claim(_job_of(response).pk)
    bulk.bury(job, RuntimeError("the mapper broke on 9990000018"))
    job.refresh_from_db()
    assert "9990000018" not in job.last_error
    polled = api.get(response["Content-Location"], token=sender_token)
    assert polled.status_code == 500
    assert "nothing of it was applied" in polled.json()["issue"][0]["diagnostics"]
    assert job.finished_at <= timezone.now()
