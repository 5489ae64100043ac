"""Admin for IG: feeds (a shared secret kept only as its hash, changes audited), code mappings (audited), and the queue
of messages not applied — opening on what needs action, filtered, retried, and every look at a message's raw text
an AccessEvent like any other admin view of patient data."""

import pytest
from django.urls import reverse

from audit.models import AccessBasis, AccessEvent, AuditEvent
from feeds.models import CodeMapping, Feed, Message
from feeds.receive import hash_secret, receive
from patients.models import SourcePatientId
from tests import factories
from tests.feeds.pipeline_helpers import message, stub_converter

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("admin_settings")]
__all__ = ["stub_converter"]
Status = Message.Status
QUEUE = reverse("admin:feeds_message_changelist")


@pytest.fixture
def feed():
    return factories.FeedFactory(name="Riverview PAS")


@pytest.fixture
def queue(stub_converter, feed):
    """One message of each kind: applied, held, invalid, failed, refused."""
    applied = receive(message("Q-APPLIED"), feed=feed).message
    held = receive(message("Q-HELD", nhs="", mrn="777", obx=["120"]), feed=feed).message
    invalid = receive(message("Q-INVALID", dob="19801301"), feed=feed).message
    stub_converter["raise"] = RuntimeError("outage")
    failed = receive(message("Q-FAILED", mrn="888"), feed=feed).message
    stub_converter.clear()
    refused = receive(message("Q-REFUSED", kind="ORM^O01"), feed=feed).message
    return {m.control_id: m for m in (applied, held, invalid, failed, refused)}


def listed(response) -> set[str]:
    return {m.control_id for m in response.context["cl"].result_list}


@pytest.mark.hazard("H-18")
def test_the_queue_opens_on_what_needs_action_with_reason_and_location(ig_client, queue):
    response = ig_client.get(QUEUE)
    assert response.status_code == 200
    assert listed(response) == {"Q-HELD", "Q-INVALID", "Q-FAILED"}
    body = response.content.decode()
    assert "No patient is known by RRV-777 yet." in body and "PID-7" in body
    assert listed(ig_client.get(QUEUE, {"queue": "all"})) == set(queue)
    assert listed(ig_client.get(QUEUE, {"queue": "refused"})) == {"Q-REFUSED"}
    assert listed(ig_client.get(QUEUE, {"type": "orm^o01", "queue": "all"})) == {"Q-REFUSED"}
    assert listed(ig_client.get(QUEUE, {"local_id": "RRV-777"})) == {"Q-HELD"}
    assert listed(ig_client.get(QUEUE, {"q": "Q-FAILED"})) == {"Q-FAILED"}


@pytest.mark.hazard("H-18")
def test_retry_from_the_queue_applies_a_held_message_once_its_patient_is_known(ig_client, ig_user, queue, feed):
    held = queue["Q-HELD"]
    patient = factories.PatientFactory()  # the hospital number learned another way (a FHIR import, say)
    SourcePatientId.objects.create(organisation=feed.organisation, resource_id="Patient/RRV-777", patient=patient)
    response = ig_client.post(
        QUEUE, {"action": "retry", "_selected_action": [held.pk, queue["Q-INVALID"].pk]}, follow=True
    )
    assert response.status_code == 200
    held.refresh_from_db()
    assert held.status == Status.APPLIED and held.patient == patient
    assert "Retried 2 messages" in response.content.decode()
    events = AuditEvent.objects.filter(action="hl7.message-retried", actor_email=ig_user.email)
    assert {e.target_id for e in events} == {str(held.pk), str(queue["Q-INVALID"].pk)}


def test_someone_who_may_only_view_cannot_retry(client, queue):
    viewer = factories.UserFactory(is_staff=True)
    viewer.user_permissions.add(*_permissions("view_message"))
    client.force_login(viewer)
    response = client.get(QUEUE)
    assert response.status_code == 200
    action_form = response.context["action_form"]
    assert action_form is None or "retry" not in dict(action_form.fields["action"].choices)
    client.post(QUEUE, {"action": "retry", "_selected_action": [queue["Q-FAILED"].pk]})
    assert Message.objects.get(pk=queue["Q-FAILED"].pk).attempts == 1


@pytest.mark.hazard("H-01")
def test_opening_a_message_shows_who_and_where_not_its_results_and_is_an_access_event(ig_client, ig_user, queue):
    applied = queue["Q-APPLIED"]
    before = AccessEvent.objects.count()
    response = ig_client.get(reverse("admin:feeds_message_change", args=[applied.pk]))
    assert response.status_code == 200
    assert "PEMBERTON^Olivia" in response.content.decode()
    (event,) = AccessEvent.objects.all()[before:]
    assert (event.patient_id, event.basis, event.page, event.user_email) == (
        applied.patient_id,
        AccessBasis.IG_ADMIN,
        "admin:hl7-message",
        ig_user.email,
    )
    held = queue["Q-HELD"]
    page = ig_client.get(reverse("admin:feeds_message_change", args=[held.pk])).content.decode()
    # Who and where, to match it; the result itself is the record's, never shown in admin.
    assert "PID|1||777^^^RRV^MR" in page and "Haemoglobin" not in page and "120" not in page.split("PID|1")[1]
    assert "Not shown: OBX ×1" in page
    latest = AccessEvent.objects.order_by("-pk").first()
    assert latest.patient_id is None and latest.page == "admin:hl7-message"  # a look naming nobody, still a look


@pytest.mark.hazard("H-01")
def test_the_queue_list_records_the_patients_it_names(ig_client, queue):
    before = AccessEvent.objects.count()
    ig_client.get(QUEUE, {"queue": "applied"})
    assert [e.patient_id for e in AccessEvent.objects.all()[before:]] == [queue["Q-APPLIED"].patient_id]


def test_messages_are_never_changed_or_deleted_in_admin(ig_client, queue):
    pk = queue["Q-FAILED"].pk
    assert ig_client.post(reverse("admin:feeds_message_change", args=[pk]), {"status": "applied"}).status_code == 403
    assert ig_client.post(reverse("admin:feeds_message_delete", args=[pk]), {"post": "yes"}).status_code == 403
    assert ig_client.get(reverse("admin:feeds_message_add")).status_code == 403
    assert Message.objects.get(pk=pk).status == Status.FAILED


def test_a_feeds_secret_is_kept_only_as_its_hash_and_its_change_audited(ig_client, ig_user, feed):
    url = reverse("admin:feeds_feed_change", args=[feed.pk])
    form = {
        "name": "Riverview PAS",
        "organisation": feed.organisation.pk,
        "active": "on",
        "message_types": "adt^a01, ADT^A03,ORU",
        "unaccepted": "ignore",
        "allowed_addresses": "10.1.2.0/24",
        "client_certificate_sha256": "",
        "sending_application": "EPIC",
        "sending_facility": "",
        "shared_secret": "a long random secret for MSH-8",
    }
    response = ig_client.post(url, form)
    assert response.status_code == 302, response.context["adminform"].form.errors
    feed.refresh_from_db()
    assert feed.shared_secret_hash == hash_secret("a long random secret for MSH-8")
    assert feed.message_types == "ADT^A01,ADT^A03,ORU" and feed.unaccepted == Feed.Unaccepted.IGNORE
    event = AuditEvent.objects.get(action="hl7.feed-changed")
    assert event.actor_email == ig_user.email
    assert set(event.detail["changed"].split(",")) >= {"message_types", "unaccepted", "shared_secret"}
    assert "a long random secret" not in str(event.detail) and feed.shared_secret_hash not in str(event.detail)
    page = ig_client.get(url).content.decode()
    assert feed.shared_secret_hash.split(":")[1] not in page
    ig_client.post(url, {**form, "shared_secret": ""})  # blank keeps the secret
    feed.refresh_from_db()
    assert feed.shared_secret_hash == hash_secret("a long random secret for MSH-8")
    ig_client.post(url, {**form, "shared_secret": "", "clear_shared_secret": "on"})
    feed.refresh_from_db()
    assert feed.shared_secret_hash == ""


def test_a_feeds_form_refuses_what_is_no_message_type_or_a_short_secret(ig_client, feed):
    url = reverse("admin:feeds_feed_change", args=[feed.pk])
    base = {"name": "x", "organisation": feed.organisation.pk, "unaccepted": "refuse"}
    errors = ig_client.post(url, {**base, "message_types": "ADT-A01"}).context["adminform"].form.errors
    assert "message_types" in errors
    errors = (
        ig_client.post(url, {**base, "message_types": "ADT^A01", "shared_secret": "short"})
        .context["adminform"]
        .form.errors
    )
    assert "shared_secret" in errors


def test_a_code_mapping_is_saved_and_audited(ig_client, ig_user, feed):
    response = ig_client.post(
        reverse("admin:feeds_codemapping_add"),
        {
            "organisation": feed.organisation.pk,
            "local_system": "WinPath",
            "local_code": "HB",
            "system": "http://loinc.org",
            "code": "718-7",
            "display": "Hemoglobin [Mass/volume] in Blood",
        },
    )
    assert response.status_code == 302
    mapping = CodeMapping.objects.get()
    event = AuditEvent.objects.get(action="hl7.code-mapping-changed")
    assert (event.actor_email, event.target_id) == (ig_user.email, str(mapping.pk))
    assert event.detail["local"] == "WinPath|HB" and event.detail["national"] == "http://loinc.org|718-7"


def _permissions(*codenames):
    from django.contrib.auth.models import Permission

    return Permission.objects.filter(content_type__app_label="feeds", codename__in=codenames)
