"""The queue end to end, on the real broker and a real worker (tests/bulk/conftest.py): a FHIR Bundle sent with
`Prefer: respond-async` imported by the worker and answered at its status URL; a message delivered twice applied
once; a message lost (a Redis restart) sent again by the sweep; `import_fhir --queue --wait` and
`hl7_replay --queue --wait` through the worker."""

import io
import json

import pytest
from django.core.management import call_command

from audit.models import AuditEvent
from audit.names import Action
from bulk import actions
from bulk.models import Job
from feeds.models import Message
from feeds.receive import receive
from patients.models import Condition, Observation, Patient
from tests import factories
from tests.feeds.pipeline_helpers import message, stub_converter
from tests.fhirapi.conftest import api, bundle, condition_resource, patient_resource, sender, sender_token

pytestmark = pytest.mark.queue
__all__ = ["api", "sender", "sender_token", "stub_converter"]


def _post_async(api, token, body, **extra):
    return api.post("/fhir/", body, token=token, HTTP_PREFER="respond-async", **extra)


def test_a_bundle_sent_asynchronously_is_imported_by_the_worker(worker, api, sender_token, sender):
    response = _post_async(api, sender_token, bundle("transaction", patient_resource(), condition_resource()))
    assert response.status_code == 202
    assert worker.wait() == "done"
    polled = api.get(response["Content-Location"], token=sender_token)
    assert polled.status_code == 200
    inner = polled.json()["entry"][0]
    assert inner["response"]["status"] == "200 OK"
    assert [e["response"]["status"] for e in inner["resource"]["entry"]] == ["201 Created", "201 Created"]
    patient = Patient.objects.get(nhs_number="9990000018")
    assert Condition.objects.filter(patient=patient).count() == 1
    submission = AuditEvent.objects.get(action=Action.FHIR_SUBMISSION)
    job = Job.objects.get()
    assert submission.actor_email == job.requested_by  # the partner system's token, as if it had waited
    assert submission.detail["endpoint"] == "POST /fhir/"


@pytest.mark.hazard("H-05")
def test_a_message_delivered_twice_runs_the_job_once(worker, api, sender_token):
    _post_async(api, sender_token, bundle("batch", patient_resource()))
    assert worker.wait() == "done"
    actions.send(Job.objects.get().pk)  # a second copy (a redelivery after a visibility timeout, say)
    assert worker.wait() == "not claimed"
    assert AuditEvent.objects.filter(action=Action.FHIR_SUBMISSION).count() == 1


@pytest.mark.hazard("H-05")
def test_a_lost_message_is_sent_again_by_the_sweep(worker, api, sender_token, monkeypatch, settings):
    settings.BULK_REDISPATCH_SECONDS = 0
    with monkeypatch.context() as lost:
        lost.setattr(actions, "send", lambda job_id: None)  # Redis restarted: the message went with it
        _post_async(api, sender_token, bundle("batch", patient_resource()))
    job = Job.objects.get()
    assert job.status == Job.Status.QUEUED and job.dispatched_at is None
    assert actions.sweep() == 1
    assert worker.wait() == "done"
    assert Patient.objects.filter(nhs_number="9990000018").exists()


def test_import_fhir_queue_and_wait(worker, tmp_path, sender):
    (tmp_path / "patient.json").write_text(json.dumps(patient_resource()))
    (tmp_path / "condition.json").write_text(json.dumps(condition_resource()))
    (tmp_path / "second.json").write_text(
        json.dumps(bundle("transaction", patient_resource("p2", nhs_number="9990000026", family="Other")))
    )
    out = io.StringIO()
    call_command(
        "import_fhir",
        str(tmp_path),
        organisation=sender.ods_code,
        queue=True,
        wait=True,
        submission_id="nightly-2026-12-07",
        stdout=out,
        stderr=io.StringIO(),
    )
    job = Job.objects.get()
    assert (job.status, job.total, job.done) == (Job.Status.DONE, 2, 2)  # the files together, then the transaction
    assert "created 3" in out.getvalue()
    assert Condition.objects.filter(patient__nhs_number="9990000018").count() == 1
    assert Patient.objects.filter(nhs_number="9990000026").exists()
    again = io.StringIO()
    call_command(
        "import_fhir",
        str(tmp_path),
        organisation=sender.ods_code,
        queue=True,
        submission_id="nightly-2026-12-07",
        stdout=again,
        stderr=io.StringIO(),
    )
    assert f"Already submitted as job {job.pk}" in again.getvalue()
    assert Job.objects.count() == 1


def test_hl7_replay_queue_and_wait(worker, stub_converter):
    feed = factories.FeedFactory()
    stub_converter["raise"] = RuntimeError("a converter bug")
    failed = [receive(message(f"RQ-{n}", obx=["140"]), feed=feed).message for n in range(3)]
    assert {m.status for m in failed} == {Message.Status.FAILED}
    stub_converter.clear()  # the fix
    out = io.StringIO()
    call_command("hl7_replay", queue=True, wait=True, stdout=out, stderr=io.StringIO())
    assert "applied 3" in out.getvalue()
    assert set(Message.objects.values_list("status", flat=True)) == {Message.Status.APPLIED}
    assert Observation.objects.count() == 3
    retried = AuditEvent.objects.filter(action="hl7.message-retried")
    assert retried.count() == 3
    assert {row.actor_email for row in retried} == {Job.objects.get().requested_by}
