"""One message through the pipeline: kept before it is applied, checked against its feed, imported whole or not at
all, answered as HL7 says, audited once, and released from the queue when a later message teaches its patient.

The converters are ADT's and ORU's (their own tests); here a stub stands in (tests/feeds/pipeline_helpers.py)."""

import pytest
from django.db import connection

from audit.models import AuditEvent
from feeds import receive as pipeline
from feeds.convert import Conversion, Held, Invalid, NotAccepted
from feeds.models import Feed, Message
from feeds.receive import hash_secret, receive
from patients.models import Observation, Patient, Result, SourcePatientId
from tests import factories
from tests.feeds.pipeline_helpers import NHS_NUMBER, message, segments_of, stub_convert, stub_converter

pytestmark = pytest.mark.django_db
__all__ = ["stub_converter"]  # the fixture, imported for its name
Status = Message.Status


@pytest.fixture
def feed():
    return factories.FeedFactory(name="Riverview PAS")


def msa(reply) -> list[str]:
    return segments_of(reply.ack)["MSA"]


def err(reply) -> list[str]:
    return segments_of(reply.ack)["ERR"]


@pytest.mark.hazard("H-18")
def test_a_message_is_kept_applied_answered_aa_and_audited(stub_converter, feed):
    raw = message("ADM-1", obx=["140"])
    reply = receive(raw, feed=feed, peer="10.1.2.3:50000")
    assert msa(reply)[1:3] == ["AA", "ADM-1"]
    row = reply.message
    assert (row.status, row.ack_code, row.message_type, row.control_id, row.version) == (
        Status.APPLIED,
        "AA",
        "ADT^A01",
        "ADM-1",
        "2.4",
    )
    assert row.raw == raw and row.peer == "10.1.2.3:50000" and row.feed == feed and row.attempts == 1
    assert row.sent_at.isoformat() == "2024-03-01T10:15:00+00:00"
    patient = Patient.objects.get(nhs_number=NHS_NUMBER)
    assert row.patient_id == patient.pk and row.local_id == "RRV-40800123" and row.submission is not None
    assert (
        SourcePatientId.objects.get(organisation=feed.organisation, resource_id="Patient/RRV-40800123").patient
        == patient
    )
    assert Observation.objects.filter(result__patient=patient).count() == 1
    (event,) = AuditEvent.objects.filter(action="hl7.message")
    assert event.actor_email == f"hl7-feed:{feed.pk}:Riverview PAS@{feed.organisation.ods_code}"
    assert (event.target_type, event.target_id, event.patient_id) == ("Message", str(row.pk), patient.pk)
    assert event.detail["status"] == "applied" and event.detail["control_id"] == "ADM-1"
    assert event.detail["message_type"] == "ADT^A01" and event.detail["ack"] == "AA"
    submission = AuditEvent.objects.get(action="fhir.submission")
    assert submission.actor_email == event.actor_email and submission.detail["command"] == "hl7"
    assert submission.detail["endpoint"] == "mllp"


@pytest.mark.hazard("H-18")
def test_the_same_message_again_is_kept_again_and_changes_nothing(stub_converter, feed):
    first = receive(message("R-1", obx=["140"]), feed=feed)
    again = receive(message("R-1", obx=["140"]), feed=feed)
    assert (first.status, again.status) == (Status.APPLIED, Status.APPLIED)
    assert Message.objects.count() == 2
    assert Patient.objects.count() == 1 and Result.objects.count() == 1 and Observation.objects.count() == 1


@pytest.mark.hazard("H-18")
@pytest.mark.django_db(transaction=True)
def test_the_row_is_committed_before_anything_is_applied(monkeypatch):
    feed = factories.FeedFactory()
    seen = {}

    def convert(msg, feed_):
        row = Message.objects.get(control_id="K-1")
        seen.update(status=row.status, atomic=connection.in_atomic_block, raw=row.raw)
        raise RuntimeError("converter bug")

    monkeypatch.setattr(pipeline, "converter", lambda kind: convert)
    reply = receive(message("K-1"), feed=feed)
    assert seen == {"status": Status.RECEIVED, "atomic": False, "raw": message("K-1")}  # stored and committed
    row = Message.objects.get(control_id="K-1")
    assert (row.status, row.ack_code, row.raw) == (Status.FAILED, "AE", message("K-1"))
    assert "RuntimeError: converter bug" in row.reason
    assert msa(reply)[1] == "AE" and err(reply)[1].endswith("207&Application internal error&HL70357")


@pytest.mark.hazard("H-18")
def test_a_converter_that_raises_leaves_the_row_failed_never_an_exception(stub_converter, feed, caplog):
    stub_converter["raise"] = KeyError("PV1")
    reply = receive(message("F-1"), feed=feed)
    assert reply.status == Status.FAILED and reply.message.reason.startswith("Could not be applied: KeyError")
    assert "could not be applied" in caplog.text
    assert AuditEvent.objects.get(action="hl7.message").detail["status"] == "failed"


@pytest.mark.hazard("H-18")
def test_an_entry_ingest_refuses_leaves_nothing_of_the_message_but_its_row(stub_converter, feed):
    reply = receive(message("A-1", obx=["140"], extra="OBX|2|NM|NOBODY^Nobody||1|g/L"), feed=feed)
    assert reply.status == Status.INVALID
    assert msa(reply)[1] == "AE"
    assert err(reply)[1] == "OBX^2^^204&Unknown key identifier&HL70357"  # at the segment it came from
    assert reply.message.error_location == "OBX[2]" and "nobody" in reply.message.reason
    assert not Patient.objects.exists() and not SourcePatientId.objects.exists() and not Result.objects.exists()
    assert reply.message.submission is None
    assert not AuditEvent.objects.filter(action="fhir.submission").exists()  # rolled back with the rest
    assert AuditEvent.objects.get(action="hl7.message").detail["status"] == "invalid"


@pytest.mark.hazard("H-18")
def test_work_after_the_import_failing_rolls_the_import_back(monkeypatch, feed):
    def convert(msg, feed_):
        conversion = stub_convert(msg, feed_)

        def merge(organisation, actor):
            raise RuntimeError("merge failed half way")

        return Conversion(conversion.bundle, conversion.origins, conversion.local_id, after=[merge])

    monkeypatch.setattr(pipeline, "converter", lambda kind: convert)
    reply = receive(message("M-1", kind="ADT^A40"), feed=feed)
    assert reply.status == Status.FAILED and "merge failed" in reply.message.reason
    assert not Patient.objects.exists() and not SourcePatientId.objects.exists()


def test_after_work_runs_with_the_feeds_organisation_and_actor(monkeypatch, feed):
    calls = []

    def convert(msg, feed_):
        conversion = stub_convert(msg, feed_)
        conversion.after.append(lambda organisation, actor: calls.append((organisation, actor.email)))
        return conversion

    monkeypatch.setattr(pipeline, "converter", lambda kind: convert)
    assert receive(message("M-2"), feed=feed).status == Status.APPLIED
    assert calls == [(feed.organisation, pipeline.feed_actor(feed).email)]


@pytest.mark.hazard("H-06")
@pytest.mark.hazard("H-18")
def test_held_is_aa_queued_with_its_reason_and_released_when_a_later_message_teaches_the_patient(stub_converter, feed):
    held = receive(message("L-1", nhs="", obx=["131"]), feed=feed)  # hospital number only, never seen
    assert msa(held)[1] == "AA" and held.status == Status.HELD
    row = held.message
    assert (row.local_id, row.error_location, row.patient_id) == ("RRV-40800123", "PID-3", None)
    assert "RRV-40800123" in row.reason
    assert not Observation.objects.exists()
    teaching = receive(message("L-2"), feed=feed)  # NHS number and hospital number together
    assert teaching.status == Status.APPLIED and teaching.retried == [row]
    row.refresh_from_db()
    assert (row.status, row.attempts) == (Status.APPLIED, 2)
    assert row.patient_id == Patient.objects.get(nhs_number=NHS_NUMBER).pk
    assert Observation.objects.get().value_text == "131"


def test_held_messages_of_another_local_id_or_organisation_stay_held(stub_converter, feed):
    other_feed = factories.FeedFactory()
    mine = receive(message("H-1", nhs="", mrn="111"), feed=feed).message
    theirs = receive(message("H-2", nhs="", mrn="40800123"), feed=other_feed).message
    receive(message("H-3"), feed=feed)
    mine.refresh_from_db()
    theirs.refresh_from_db()
    assert (mine.status, theirs.status) == (Status.HELD, Status.HELD)


def test_invalid_content_is_ae_naming_the_field(stub_converter, feed):
    reply = receive(message("I-1", dob="19801301"), feed=feed)
    assert reply.status == Status.INVALID and reply.message.error_location == "PID-7"
    assert err(reply)[1] == "PID^1^7^102&Data type error&HL70357"
    stub_converter["raise"] = Invalid("PID-7 (date of birth) is required.", "PID-7")
    assert err(receive(message("I-2"), feed=feed))[1].endswith("101&Required field missing&HL70357")


@pytest.mark.hazard("H-18")
@pytest.mark.parametrize(
    ("change", "location"),
    [
        ({"active": False}, "MSH"),
        ({"sending_application": "CERNER"}, "MSH-3"),
        ({"sending_facility": "RAL"}, "MSH-4"),
        ({"shared_secret_hash": hash_secret("correct horse battery staple")}, "MSH-8"),
    ],
)
def test_a_sender_the_feed_does_not_recognise_is_refused_ar_and_kept(stub_converter, feed, change, location):
    Feed.objects.filter(pk=feed.pk).update(**change)
    feed.refresh_from_db()
    reply = receive(message("S-1", security="guess"), feed=feed)
    assert msa(reply)[1] == "AR" and reply.status == Status.REFUSED
    assert err(reply)[1].startswith(location.replace("-", "^1^") if "-" in location else "MSH^1^")
    assert reply.message.raw and not Patient.objects.exists()


def test_the_right_secret_in_msh_8_is_accepted(stub_converter, feed):
    feed.shared_secret_hash = hash_secret("correct horse battery staple")
    feed.save()
    assert receive(message("S-2", security="correct horse battery staple"), feed=feed).status == Status.APPLIED


@pytest.mark.hazard("H-18")
def test_a_type_or_event_not_accepted_is_refused_ar_or_kept_and_ignored_as_the_feed_says(stub_converter, feed):
    feed.message_types = "ADT^A01,ADT^A03"
    feed.save()
    event = receive(message("T-1", kind="ADT^A60"), feed=feed)
    assert (msa(event)[1], event.status) == ("AR", Status.REFUSED)
    assert err(event)[1] == "MSH^1^9^201&Unsupported event code&HL70357"
    kind = receive(message("T-2", kind="ORM^O01"), feed=feed)
    assert err(kind)[1] == "MSH^1^9^200&Unsupported message type&HL70357"
    feed.unaccepted = Feed.Unaccepted.IGNORE
    feed.save()
    ignored = receive(message("T-3", kind="ADT^A60"), feed=feed)
    assert (msa(ignored)[1], ignored.status) == ("AA", Status.IGNORED)
    assert "not accepted" in ignored.message.reason
    assert not Patient.objects.exists()


def test_a_whole_type_in_the_feeds_list_takes_every_event(stub_converter, feed):
    feed.message_types = "ORU"
    feed.save()
    assert receive(message("W-1", kind="ORU^R01"), feed=feed).status == Status.APPLIED


def test_a_converter_that_does_not_take_the_event_is_treated_as_not_accepted(stub_converter, feed):
    stub_converter["raise"] = NotAccepted("A17 swaps two patients' beds: not taken.")
    reply = receive(message("N-1", kind="ADT^A01"), feed=feed)
    assert reply.status == Status.REFUSED and "A17" in reply.message.reason


def test_a_type_carerecord_has_no_converter_for_is_refused(feed):
    feed.message_types = "SIU^S12"
    feed.save()
    reply = receive(message("C-1", kind="SIU^S12"), feed=feed)
    assert reply.status == Status.REFUSED and msa(reply)[1] == "AR"


@pytest.mark.hazard("H-18")
def test_unreadable_input_is_kept_and_answered(feed):
    garbage = receive(b"\x0bnot hl7 at all\x1c", feed=feed)
    assert msa(garbage)[1] == "AR" and garbage.status == Status.INVALID and garbage.message.raw
    broken = receive(message("U-1") + "\rthis is no segment", feed=feed)
    assert msa(broken)[1:3] == ["AE", "U-1"] and broken.message.error_location == "segment 4"
    encoding = receive("MSH|^~|EPIC|RRV|||2024||ADT^A01|U-2|P|2.4", feed=feed)
    assert msa(encoding)[1] == "AR" and encoding.message.error_location == "MSH-2"
    nul = receive(message("U-3") + "\rNTE|1||\x00", feed=feed)
    assert "\x00" not in nul.message.raw


def test_a_message_with_no_type_is_rejected(feed):
    reply = receive("MSH|^~\\&|EPIC|RRV|||2024|||U-4|P|2.4\rPID|1", feed=feed)
    assert reply.status == Status.INVALID and err(reply)[1] == "MSH^1^9^101&Required field missing&HL70357"


@pytest.mark.hazard("H-18")
def test_enhanced_mode_commit_then_application_ack(stub_converter, feed):
    both = receive(message("E-1", accept_ack="AL", application_ack="AL"), feed=feed)
    assert [segments_of(a)["MSA"][1] for a in both.acks] == ["CA", "AA"] and both.ack == both.acks[0]
    commit_only = receive(message("E-2", accept_ack="AL", application_ack="NE"), feed=feed)
    assert [segments_of(a)["MSA"][1] for a in commit_only.acks] == ["CA"]
    feed.message_types = "ADT^A03"
    feed.save()
    rejected = receive(message("E-3", accept_ack="AL", application_ack="AL"), feed=feed)
    assert [segments_of(a)["MSA"][1] for a in rejected.acks] == ["CR"]
    silent = receive(message("E-4", accept_ack="NE", application_ack="NE"), feed=feed)
    assert silent.acks == [] and silent.ack == "" and silent.message.status == Status.REFUSED


def test_with_no_feed_an_import_takes_the_supported_types(stub_converter):
    organisation = factories.OrganisationFactory()
    applied = receive(message("D-1"), feed=None, organisation=organisation, endpoint="file")
    assert applied.status == Status.APPLIED and applied.message.feed is None
    assert applied.message.organisation == organisation
    assert AuditEvent.objects.get(action="hl7.message").actor_email.startswith("hl7-feed:none:")
    assert receive(message("D-2", kind="ORM^O01"), feed=None, organisation=organisation).status == Status.REFUSED


def test_with_neither_feed_nor_organisation_nothing_is_filed_and_the_answer_is_ar():
    reply = receive(message("X-1"), feed=None)
    assert reply.message is None and msa(reply)[1:3] == ["AR", "X-1"]
    assert not Message.objects.exists()


@pytest.mark.hazard("H-18")
def test_a_message_that_cannot_be_stored_is_never_acknowledged(monkeypatch, feed):
    def broken(*args, **kwargs):
        raise RuntimeError("database down")

    monkeypatch.setattr(pipeline, "_keep", broken)
    with pytest.raises(RuntimeError):  # the listener closes the connection unanswered: the engine sends it again
        receive(message("Z-1", accept_ack="AL", application_ack="AL"), feed=feed)


def test_a_held_exception_carries_its_local_id_to_the_queue(monkeypatch, feed):
    monkeypatch.setattr(
        pipeline, "converter", lambda kind: lambda m, f: (_ for _ in ()).throw(Held("DOB differs", local_id="RRV-9"))
    )
    reply = receive(message("Q-1"), feed=feed)
    assert (reply.message.status, reply.message.local_id, reply.message.reason) == (Status.HELD, "RRV-9", "DOB differs")


@pytest.mark.hazard("H-18")
def test_an_attempt_writes_its_outcome_and_never_puts_back_raw_text_retention_cleared_meanwhile(stub_converter, feed):
    """A retry or replay holds the row as it was read; retention may clear the raw text while it runs. What the
    attempt writes is its outcome (status, ACK, reason, attempts), not the text it read."""
    first = receive(message("KEEP-1", obx=["140"]), feed=feed, peer="engine").message
    row = Message.objects.get(pk=first.pk)  # read (raw text and all) by a replay...
    Message.objects.filter(pk=row.pk).update(raw="", raw_cleared_at=row.received_at)  # ...cleared meanwhile
    pipeline.process(row, feed=feed)
    row.refresh_from_db()
    assert (row.raw, row.attempts, row.status, row.ack_code) == ("", 2, Status.APPLIED, "AA")
    assert row.raw_cleared_at is not None
