"""IG's side of the queue in admin: every job and the dead-letter list (inputs named and sized, never shown),
sending a dead letter again and cancelling a waiting job (audited, as the IG officer), the home page's tile,
the metrics' queue depth, and the HL7 queue's "replay in the background"."""

import pytest
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from audit.names import Action
from bulk import actions
from bulk.models import Job
from carerecord import dashboard
from tests import factories
from tests.carerecord.test_metrics import scraper

pytestmark = pytest.mark.django_db
__all__ = ["scraper"]
SECRET_BODY = b'{"resourceType": "Bundle", "note": "Ada Testperson 9990000018"}'


def _job(organisation, *, dead=False) -> Job:
    job, _ = actions.submit(
        kind=Job.Kind.FHIR_IMPORT,
        by=actions.Requester(email="api-token:7:abc@X1"),
        inputs=[actions.Input(name="POST /fhir/", content_type="application/fhir+json", data=SECRET_BODY)],
        total=1,
        organisation=organisation,
    )
    if dead:
        actions.bury(actions.claim(job.pk), "OperationalError: the database went away")
    return job


def test_the_dead_letter_list_shows_only_dead_letters_and_never_their_content(ig_client, organisation):
    dead, waiting = _job(organisation, dead=True), _job(organisation)
    page = ig_client.get(reverse("admin:bulk_deadletter_changelist"))
    assert page.status_code == 200
    assert str(dead.pk) in page.content.decode() and str(waiting.pk) not in page.content.decode()
    opened = ig_client.get(reverse("admin:bulk_job_change", args=[dead.pk]))
    assert opened.status_code == 200
    text = opened.content.decode()
    assert "the database went away" in text and "POST /fhir/" in text
    assert "9990000018" not in text and "Testperson" not in text


def test_ig_send_a_dead_letter_again_from_admin(
    ig_client, ig_user, organisation, django_capture_on_commit_callbacks, monkeypatch
):
    sent = []
    monkeypatch.setattr(actions, "send", sent.append)
    dead = _job(organisation, dead=True)
    with django_capture_on_commit_callbacks(execute=True):
        response = ig_client.post(
            reverse("admin:bulk_deadletter_changelist"), {"action": "send_again", "_selected_action": [dead.pk]}
        )
    assert response.status_code == 302
    dead.refresh_from_db()
    assert (dead.status, dead.attempts, sent) == (Job.Status.QUEUED, 0, [dead.pk])
    retried = AuditEvent.objects.get(action=Action.BULK_RETRIED)
    assert (retried.actor_id, retried.target_id) == (ig_user.pk, str(dead.pk))


def test_cancelling_from_admin_takes_only_waiting_jobs(ig_client, organisation):
    waiting, dead = _job(organisation), _job(organisation, dead=True)
    ig_client.post(
        reverse("admin:bulk_job_changelist"), {"action": "cancel", "_selected_action": [waiting.pk, dead.pk]}
    )
    assert dict(Job.objects.values_list("pk", "status")) == {waiting.pk: Job.Status.CANCELLED, dead.pk: Job.Status.DEAD}
    assert AuditEvent.objects.filter(action=Action.BULK_CANCELLED).count() == 1


def test_a_professional_without_admin_rights_sees_no_jobs(client, clinician, organisation):
    client.force_login(clinician)
    job = _job(organisation, dead=True)
    assert client.get(reverse("admin:bulk_job_change", args=[job.pk])).status_code == 302  # to admin's sign-in


def test_the_home_page_tile_counts_dead_letters_for_ig(ig_user, organisation):
    _job(organisation, dead=True)
    _job(organisation)
    tile = next(t for t in dashboard.tiles(ig_user) if "dead letters" in t.title)
    assert tile.count == 1
    assert dashboard.tiles(factories.ProfessionalFactory().user) == []


def test_metrics_show_the_queue_depth_and_dead_letters_by_kind(scraper, organisation):
    _job(organisation, dead=True)
    _job(organisation)
    text = scraper()
    assert 'carerecord_bulk_jobs{kind="fhir.import",status="queued"} 1.0' in text
    assert 'carerecord_bulk_jobs{kind="fhir.import",status="dead"} 1.0' in text
    assert 'carerecord_bulk_jobs{kind="hl7.replay",status="running"} 0.0' in text


def test_replay_in_the_background_from_the_hl7_queue(ig_client, ig_user, organisation, queue_on):
    from feeds.models import Feed, Message

    feed = Feed.objects.create(organisation=organisation, name="Hospital PAS")
    held = [
        Message.objects.create(
            feed=feed,
            organisation=organisation,
            raw=f"MSH|^~\\&|PAS|H|||20240301||ADT^A01|B-{n}|P|2.4",
            message_type="ADT^A01",
            received_at=timezone.now(),
            control_id=f"B-{n}",
            status=Message.Status.FAILED,
        )
        for n in range(2)
    ]
    response = ig_client.post(
        reverse("admin:feeds_message_changelist"),
        {"action": "replay_in_background", "_selected_action": [m.pk for m in held]},
    )
    assert response.status_code == 302
    job = Job.objects.get()
    assert (job.kind, job.total, job.params["messages"]) == (Job.Kind.HL7_REPLAY, 2, [m.pk for m in held])
    assert (job.requested_by_user_id, job.requested_by) == (ig_user.pk, ig_user.email)


def test_replay_in_the_background_says_so_when_the_queue_is_off(ig_client, organisation, settings):
    from feeds.models import Feed, Message

    settings.CELERY_BROKER_URL = ""
    feed = Feed.objects.create(organisation=organisation, name="Hospital PAS")
    held = Message.objects.create(
        feed=feed, organisation=organisation, raw="MSH|^~\\&|PAS", message_type="ADT^A01", control_id="Q-1",
        received_at=timezone.now(), status=Message.Status.FAILED,
    )  # fmt: skip
    response = ig_client.post(
        reverse("admin:feeds_message_changelist"),
        {"action": "replay_in_background", "_selected_action": [held.pk]},
        follow=True,
    )
    assert "The queue is off here" in response.content.decode()
    assert not Job.objects.exists()
