"""After a fix: a kept message retried (IG, audited) or replayed (`hl7_replay`, by id, status, feed or date), from its
raw text through the same pipeline; and retention (`hl7_purge`) clearing old raw text, never a held message's."""

import datetime
import io

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings
from django.utils import timezone

from audit.models import AuditEvent
from feeds import actions, retention
from feeds.models import Message
from feeds.receive import receive
from patients.models import Observation, Patient
from tests import factories
from tests.feeds.pipeline_helpers import message, stub_converter

pytestmark = pytest.mark.django_db
__all__ = ["stub_converter"]
Status = Message.Status
LONDON = datetime.timezone(datetime.timedelta(0))


@pytest.fixture
def feed():
    return factories.FeedFactory()


def replay(*args, **options):
    out = io.StringIO()
    call_command("hl7_replay", *args, stdout=out, stderr=io.StringIO(), **options)
    return out.getvalue()


@pytest.mark.hazard("H-18")
def test_a_failed_message_retried_after_the_fix_is_applied_and_audited(stub_converter, feed):
    stub_converter["raise"] = RuntimeError("a converter bug")
    failed = receive(message("RT-1", obx=["140"]), feed=feed).message
    assert failed.status == Status.FAILED and not Patient.objects.exists()
    stub_converter.clear()  # the fix
    ig = factories.ProfessionalFactory().user
    reply = actions.retry(failed, by=ig)
    failed.refresh_from_db()
    assert (reply.status, failed.status, failed.attempts) == (Status.APPLIED, Status.APPLIED, 2)
    assert Observation.objects.count() == 1
    retried = AuditEvent.objects.get(action="hl7.message-retried")
    assert (retried.actor_email, retried.target_id, retried.detail["status_before"]) == (
        ig.email,
        str(failed.pk),
        "failed",
    )
    assert [e.detail["status"] for e in AuditEvent.objects.filter(action="hl7.message").order_by("pk")] == [
        "failed",
        "applied",
    ]


def test_a_message_whose_raw_was_cleared_cannot_be_retried(stub_converter, feed):
    kept = receive(message("RT-2"), feed=feed).message
    Message.objects.filter(pk=kept.pk).update(raw="", raw_cleared_at=timezone.now())
    kept.refresh_from_db()
    with pytest.raises(actions.CannotRetry):
        actions.retry(kept, by=None)


@pytest.mark.hazard("H-18")
def test_replay_by_default_takes_what_needs_action_oldest_first(stub_converter, feed):
    stub_converter["raise"] = RuntimeError("outage")
    failed = [receive(message(f"RP-{n}", mrn=f"{n}"), feed=feed).message for n in range(3)]
    stub_converter.clear()
    applied = receive(message("RP-ok", mrn="99"), feed=feed).message
    out = replay()
    assert "Replayed 3 messages: applied 3; 0 skipped" in out
    assert set(Message.objects.values_list("status", flat=True)) == {Status.APPLIED}
    applied.refresh_from_db()
    assert applied.attempts == 1  # an applied message is not replayed unless asked for
    events = AuditEvent.objects.filter(action="hl7.message-retried").order_by("pk")
    assert [e.target_id for e in events] == [str(m.pk) for m in failed]
    assert all(e.actor_email.startswith("command:hl7_replay") for e in events)


def test_replay_by_id_and_status_and_dry_run(stub_converter, feed):
    one = receive(message("ID-1"), feed=feed).message
    two = receive(message("ID-2", mrn="2"), feed=feed).message
    out = replay(ids=[one.pk], dry_run=True)
    assert f"{one.pk} " in out and "ID-1" in out and "ID-2" not in out and "1 messages would be replayed" in out
    assert Message.objects.get(pk=one.pk).attempts == 1
    replay(ids=[one.pk])
    assert (Message.objects.get(pk=one.pk).attempts, Message.objects.get(pk=two.pk).attempts) == (2, 1)
    assert "2 messages would be replayed" in replay(status=["applied"], dry_run=True)
    assert Observation.objects.count() == 0 and Patient.objects.count() == 1


def test_replay_by_date_range_and_feed(stub_converter, feed):
    other = factories.FeedFactory()
    march = datetime.datetime(2024, 3, 10, 12, tzinfo=LONDON)
    april = datetime.datetime(2024, 4, 10, 12, tzinfo=LONDON)
    stub_converter["raise"] = RuntimeError("outage")
    early = receive(message("DR-1"), feed=feed, now=march).message
    late = receive(message("DR-2"), feed=feed, now=april).message
    elsewhere = receive(message("DR-3"), feed=other, now=april).message
    out = replay(since=datetime.date(2024, 4, 1), until=datetime.date(2024, 4, 10), feed=feed.pk, dry_run=True)
    assert "DR-2" in out and "DR-1" not in out and "DR-3" not in out
    assert early.pk and elsewhere.pk and f"{late.pk} 2024-04-10 12:00" in out
    with pytest.raises(CommandError):
        call_command("hl7_replay", "--since", "10/04/2024", stdout=io.StringIO())


def test_replay_skips_a_message_whose_raw_was_cleared(stub_converter, feed):
    stub_converter["raise"] = RuntimeError("outage")
    kept = receive(message("SK-1"), feed=feed).message
    Message.objects.filter(pk=kept.pk).update(raw="", raw_cleared_at=timezone.now())
    assert "0 messages: none; 1 skipped" in replay()


@pytest.mark.hazard("H-18")
@override_settings(HL7_RAW_RETENTION_DAYS=90)
def test_retention_clears_old_raw_text_and_keeps_rows_and_anything_needing_action(stub_converter, feed):
    now = timezone.now()
    old = now - datetime.timedelta(days=91)
    applied = receive(message("OLD-1"), feed=feed, now=old).message
    held = receive(message("OLD-2", nhs="", mrn="555"), feed=feed, now=old).message
    feed.message_types = "ADT^A03"
    feed.save()
    refused = receive(message("OLD-3"), feed=feed, now=old).message
    stub_converter["raise"] = RuntimeError("outage")
    feed.message_types = "ADT^A01"
    feed.save()
    failed = receive(message("OLD-4"), feed=feed, now=old).message
    recent = receive(message("NEW-1"), feed=feed, now=now - datetime.timedelta(days=89)).message
    assert held.status == Status.HELD and refused.status == Status.REFUSED and failed.status == Status.FAILED
    out = io.StringIO()
    call_command("hl7_purge", "--dry-run", stdout=out)
    assert "2 messages older than 90 days would be cleared" in out.getvalue()
    call_command("hl7_purge", stdout=out)
    assert "Cleared the raw text of 2 messages" in out.getvalue()
    rows = {m.control_id: m for m in Message.objects.all()}
    assert rows["OLD-1"].raw == "" and rows["OLD-1"].raw_cleared_at is not None
    assert rows["OLD-1"].status == Status.APPLIED and rows["OLD-1"].message_type == "ADT^A01"  # the row stays
    assert rows["OLD-3"].raw == ""
    assert rows["OLD-2"].raw and rows["OLD-4"].raw and rows["NEW-1"].raw  # held, failed, recent: kept
    assert rows["OLD-2"].raw_cleared_at is None
    assert retention.clear() == 0  # nothing left to clear
    assert Message.objects.count() == 5 and applied.pk and recent.pk


def test_purge_refuses_a_retention_of_less_than_a_day():
    with pytest.raises(CommandError):
        call_command("hl7_purge", "--days", "0", stdout=io.StringIO())
