"""What a retry and the odd cases do: a FHIR import resumed after the parts it finished (none applied twice), a
replay over messages gone or cleared, the task's own claim failing while the database is away, two submissions
of one id at the same moment, and the sweep a starting worker runs."""

import io
import json

import pytest
from django.core.management import CommandError, call_command
from django.db import OperationalError
from django.utils import timezone

from audit.models import AuditEvent
from audit.names import Action
from bulk import actions, tasks
from bulk.models import Job
from feeds import replays
from feeds.models import Message
from fhirapi import bulkload
from tests import factories
from tests.feeds.pipeline_helpers import stub_converter
from tests.fhirapi.conftest import api, bundle, patient_resource

pytestmark = pytest.mark.django_db
BY = actions.Requester(email="command:test@ops")
__all__ = ["api", "stub_converter"]


def _import_job(organisation, files) -> Job:
    job, _ = actions.submit(
        kind=Job.Kind.FHIR_IMPORT,
        by=BY,
        inputs=[actions.Input(name=name, content_type="", data=json.dumps(body).encode()) for name, body in files],
        total=0,
        organisation=organisation,
        channel={"command": "import_fhir", "operator": "ops", "run": "r1"},
    )
    return job


@pytest.mark.hazard("H-05")
def test_a_retried_import_resumes_after_the_parts_it_finished(other_organisation, monkeypatch):
    job = _import_job(
        other_organisation,
        [
            ("a.json", patient_resource("p1")),
            ("b.json", bundle("transaction", patient_resource("p2", nhs_number="9990000026", family="Other"))),
        ],
    )
    real, calls = bulkload.ingest, []

    def flaky(submission, **kwargs):
        calls.append(submission.bundle_type)
        if len(calls) == 2:
            raise OperationalError("the database restarted")
        return real(submission, **kwargs)

    monkeypatch.setattr(bulkload, "ingest", flaky)
    tasks.run.apply(args=[str(job.pk)])
    job.refresh_from_db()
    assert (job.status, job.attempts, job.total, job.done) == (Job.Status.DONE, 2, 2, 2)
    assert calls == ["batch", "transaction", "transaction"]  # the first part was not applied again
    assert AuditEvent.objects.filter(action=Action.FHIR_SUBMISSION).count() == 2
    assert job.result["summary"].startswith("created 2")


def test_an_import_job_reports_the_files_it_could_not_read(other_organisation):
    job = _import_job(other_organisation, [("a.json", patient_resource()), ("b.json", {"resourceType": 7})])
    job = actions.claim(job.pk)
    result = bulkload.run(job)
    assert result["summary"] == "created 1, updated 0, unchanged 0, rejected 0; 1 files unreadable"
    assert result["unreadable"][0].startswith("b.json: ")


def test_a_single_resource_sent_as_xml_to_the_base_is_answered_400(other_organisation):
    job, _ = actions.submit(
        kind=Job.Kind.FHIR_IMPORT,
        by=BY,
        inputs=[
            actions.Input(
                name="POST /fhir/",
                content_type="application/fhir+xml",
                data=b'<Patient xmlns="http://hl7.org/fhir"><id value="p1"/></Patient>',
            )
        ],
        total=1,
        organisation=other_organisation,
        channel={"endpoint": "POST /fhir/", "answer": "http"},
    )
    result = bulkload.run(actions.claim(job.pk))
    assert result["status"] == 400
    # The words POST [base] answers synchronously (fhirapi.parse.url_mismatch, shared by both).
    assert result["body"]["issue"][0]["diagnostics"] == "POST a single resource to {base}/Patient."


def test_a_replay_counts_messages_gone_or_cleared(stub_converter):
    feed = factories.FeedFactory()
    cleared = Message.objects.create(
        feed=feed, organisation=feed.organisation, raw="", message_type="ORU^R01", control_id="C-1",
        received_at=timezone.now(), status=Message.Status.FAILED, raw_cleared_at=timezone.now(),
    )  # fmt: skip
    job, _ = replays.submit([cleared.pk, 10**9], by=BY, channel={"endpoint": "replay"})
    result = replays.run(actions.claim(job.pk))
    assert (result["skipped"], result["missing"]) == (1, 1)
    assert result["summary"] == "Replayed 0: none; 1 skipped (raw cleared), 1 no longer held"


def test_a_claim_the_database_refuses_is_tried_again(monkeypatch):
    job, _ = actions.submit(kind=Job.Kind.HL7_REPLAY, by=BY, total=0, params={"messages": []})
    real, tries = actions.claim, []

    def away_once(job_id, **kwargs):
        tries.append(kwargs)
        if len(tries) == 1:
            raise OperationalError("connection refused")
        return real(job_id, **kwargs)

    monkeypatch.setattr(actions, "claim", away_once)
    tasks.run.apply(args=[str(job.pk)])
    job.refresh_from_db()
    assert job.status == Job.Status.DONE
    assert [t["redelivery"] for t in tries] == [False, True]


def test_two_submissions_of_one_id_at_the_same_moment_make_one_job(monkeypatch):
    first, _ = actions.submit(kind=Job.Kind.HL7_REPLAY, by=BY, total=1, submission_id="s1", params={"messages": [1]})
    real, looks = actions._named, []

    def not_yet(*args):
        looks.append(args)
        return None if len(looks) == 1 else real(*args)  # the other submission had not committed when looked for

    monkeypatch.setattr(actions, "_named", not_yet)
    again, created = actions.submit(
        kind=Job.Kind.HL7_REPLAY, by=BY, total=1, submission_id="s1", params={"messages": [1]}
    )
    assert (again.pk, created, Job.objects.count()) == (first.pk, False, 1)


def test_a_starting_worker_sends_what_waits(queue_on, monkeypatch):
    from carerecord.celery import send_what_waits

    sent = []
    monkeypatch.setattr(actions, "send", sent.append)
    job, _ = actions.submit(kind=Job.Kind.HL7_REPLAY, by=BY, total=0, params={"messages": []})
    send_what_waits()
    assert sent == [job.pk]


def test_the_commands_refuse_a_submission_id_given_other_content(queue_on, tmp_path, other_organisation):
    (tmp_path / "p.json").write_text(json.dumps(patient_resource()))
    options = {"organisation": other_organisation.ods_code, "queue": True, "submission_id": "x1"}
    call_command("import_fhir", str(tmp_path), **options, stdout=io.StringIO(), stderr=io.StringIO())
    (tmp_path / "p.json").write_text(json.dumps(patient_resource(family="Changed")))
    with pytest.raises(CommandError, match="already names job"):
        call_command("import_fhir", str(tmp_path), **options, stdout=io.StringIO(), stderr=io.StringIO())


def test_the_async_api_refuses_an_overlong_key_and_an_overlarge_body(client, queue_on, settings, other_organisation):
    from directory.actions import create_api_token

    _, secret = create_api_token(by=None, name="EPR", organisation=other_organisation)
    body = json.dumps(bundle("batch", patient_resource()))
    headers = {"HTTP_AUTHORIZATION": f"Bearer {secret}", "HTTP_PREFER": "respond-async"}
    long_key = client.post(
        "/fhir/", body, content_type="application/fhir+json", HTTP_IDEMPOTENCY_KEY="k" * 201, **headers
    )
    assert long_key.status_code == 400
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100
    too_large = client.post("/fhir/", body, content_type="application/fhir+json", **headers)
    assert too_large.status_code == 413
    assert not Job.objects.exists()


def test_a_job_waiting_to_retry_says_when(api, queue_on, other_organisation):
    from directory.actions import create_api_token

    _, secret = create_api_token(by=None, name="EPR", organisation=other_organisation)
    response = api.post("/fhir/", bundle("batch", patient_resource()), token=secret, HTTP_PREFER="respond-async")
    job = actions.claim(Job.objects.get().pk)
    actions.will_retry(job, OperationalError("deadlock detected"), 40)
    polled = api.get(response["Content-Location"], token=secret)
    assert polled.status_code == 202
    assert 35 <= int(polled["Retry-After"]) <= 40
    assert "waiting to retry" in polled["X-Progress"] and "deadlock detected" in polled["X-Progress"]
