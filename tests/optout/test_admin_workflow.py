"""The IG workflow in admin, driven through its URLs as an IG officer uses it (staff, permissions only from the IG
group): the queue, matching, verify, uphold, reject, withdraw; each step audited, the requester emailed, and a
refused step shown as a message, never a 500. The row itself is never edited, added or deleted in admin."""

import datetime

import pytest
from django.contrib import admin
from django.core import mail
from django.core.mail.backends.base import BaseEmailBackend
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from audit.models import AccessBasis, AccessEvent, AccessOutcome, AuditEvent
from audit.names import Action
from demo.accounts import information_governance_group
from directory.models import Region
from optout import actions
from optout.models import Objection, RegionalProcess
from sharing.access import decide
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _admin_settings(admin_settings):
    """Admin pages render the same whatever the environment's static and TLS settings."""


@pytest.fixture
def request_for(patient):
    """A web-form request describing `patient` well enough to match, with no NHS number given."""
    return actions.submit_objection(
        given_name=patient.given_name,
        family_name=patient.family_name.upper(),
        date_of_birth=patient.date_of_birth,
        postcode=patient.postcode,
        contact_email="ada@example.com",
        region=Region.SEL,
        reason="I want my records kept separate.",
    )


def days_ago(days):
    """Noon in London on the day `days` days back: a calendar-day age whatever the time of the run."""
    day = timezone.localdate() - datetime.timedelta(days=days)
    return timezone.make_aware(datetime.datetime.combine(day, datetime.time(12)))


def change_url(objection):
    return reverse("admin:optout_objection_change", args=[objection.pk])


def step(client, objection, name, **data):
    """Post one workflow step the way the change page's buttons do; return the page it lands on."""
    response = client.post(reverse(f"admin:optout_objection_{name}", args=[objection.pk]), data, follow=True)
    assert response.redirect_chain == [(change_url(objection), 302)]
    assert response.status_code == 200
    objection.refresh_from_db()
    return response


# How IG checked who is asking, as the verify form posts it.
CHECKED = {"identity_check": "call-back"}


def shown_messages(response):
    return [(message.level_tag, str(message)) for message in response.context["messages"]]


def trail(objection):
    return list(
        AuditEvent.objects.filter(target_type="Objection", target_id=str(objection.pk))
        .order_by("at", "pk")
        .values_list("action", flat=True)
    )


@pytest.mark.hazard("H-02")
def test_match_verify_uphold_then_withdraw_end_to_end(ig_client, ig_user, patient, clinician, request_for):
    objection = request_for
    assert [m.to for m in mail.outbox] == [["ada@example.com"]]  # the acknowledgement, from the form's action
    assert objection.reference in mail.outbox[0].body

    page = ig_client.get(change_url(objection))
    assert page.status_code == 200
    body = page.content.decode()
    assert patient.nhs_number_display in body  # offered as a candidate: family name, date of birth, postcode
    candidate = page.context["workflow"]["candidates"][0]
    assert candidate.patient == patient and "postcode" in candidate.matched_on

    response = step(ig_client, objection, "verify")  # not matched yet: refused, as a message
    assert shown_messages(response) == [("error", f"Match {objection.reference} to a patient before verifying it.")]
    assert objection.status == Objection.Status.RECEIVED

    response = step(ig_client, objection, "match", patient=str(patient.pk))
    assert objection.patient == patient
    assert shown_messages(response)[0][0] == "success"

    step(ig_client, objection, "verify", **CHECKED)
    assert objection.status == Objection.Status.VERIFIED

    response = step(ig_client, objection, "uphold", reason="")
    assert shown_messages(response) == [("error", "Give the reason for upholding the objection.")]
    assert objection.status == Objection.Status.VERIFIED

    response = step(ig_client, objection, "uphold", reason="The patient's wish; no overriding need.")
    assert objection.status == Objection.Status.UPHELD
    assert objection.decided_by == ig_user and objection.decision_reason.startswith("The patient's wish")
    assert "emailed at ada@example.com" in shown_messages(response)[0][1]
    assert decide(clinician, patient).opted_out
    assert "has been upheld" in mail.outbox[-1].body and mail.outbox[-1].to == ["ada@example.com"]

    response = step(ig_client, objection, "withdraw", confirm="yes")
    assert objection.status == Objection.Status.WITHDRAWN and objection.withdrawn_at is not None
    assert not decide(clinician, patient).opted_out
    assert "has been withdrawn" in mail.outbox[-1].body
    assert len(mail.outbox) == 3  # received, upheld, withdrawn: matching and verifying send nothing

    assert trail(objection) == [
        "objection.received",
        "objection.matched",
        "objection.verified",
        "objection.upheld",
        "objection.withdrawn",
    ]
    decided = AuditEvent.objects.filter(target_type="Objection", target_id=str(objection.pk)).exclude(
        action="objection.received"
    )
    assert set(decided.values_list("actor_email", flat=True)) == {ig_user.email}
    assert set(decided.values_list("patient_id", flat=True)) == {patient.pk}

    # The trail is on the change page, read-only, in words; a closed objection offers no further steps.
    body = ig_client.get(change_url(objection)).content.decode()
    for words in ("Request received", "Matched to a patient", "Identity checked, verified", "Upheld"):
        assert f"<td>{words}</td>" in body
    assert "<td>Withdrawal recorded</td>" in body and "objection.upheld" not in body
    assert "Record withdrawal" not in body and 'value="Uphold"' not in body


def test_rejecting_for_clinical_need_needs_the_clinicians_name(ig_client, patient, request_for):
    objection = request_for
    step(ig_client, objection, "match", nhs_number=patient.nhs_number_display)  # typed, with spaces
    assert objection.patient == patient

    response = step(ig_client, objection, "reject", reason="", clinical_need="on", clinician_name="")
    assert shown_messages(response) == [("error", "Give the reason for rejecting the objection.")]
    response = step(ig_client, objection, "reject", reason="Safeguarding plan in place", clinical_need="on")
    assert shown_messages(response)[0] == (
        "error",
        "A rejection for clinical need needs the name of the clinician who decided it.",
    )
    assert objection.status == Objection.Status.RECEIVED

    step(
        ig_client,
        objection,
        "reject",
        reason="Safeguarding plan in place",
        clinical_need="on",
        clinician_name="Dr Ines Okafor",
        confirm="yes",
    )
    assert objection.status == Objection.Status.REJECTED
    assert objection.clinician_name == "Dr Ines Okafor"
    assert "not been able to uphold" in mail.outbox[-1].body and "Safeguarding plan" in mail.outbox[-1].body
    rejected = AuditEvent.objects.get(target_type="Objection", target_id=str(objection.pk), action="objection.rejected")
    assert rejected.detail["clinician"] == "Dr Ines Okafor"

    # A closed request cannot be moved on again: a message, not a 500, and nothing changes.
    for name, data in (("verify", {}), ("uphold", {"reason": "x"}), ("withdraw", {}), ("match", {})):
        response = step(ig_client, objection, name, patient=str(patient.pk), **data)
        assert shown_messages(response)[0][0] == "error", name
        assert objection.status == Objection.Status.REJECTED
    assert trail(objection).count("objection.rejected") == 1


class UnreachableMailServer(BaseEmailBackend):
    def send_messages(self, email_messages):
        raise ConnectionRefusedError("mail server down")


def test_when_the_email_cannot_be_sent_the_step_is_not_taken(ig_client, patient, request_for, settings):
    step(ig_client, request_for, "match", patient=str(patient.pk))
    step(ig_client, request_for, "verify", **CHECKED)
    settings.EMAIL_BACKEND = f"{__name__}.UnreachableMailServer"
    response = step(ig_client, request_for, "uphold", reason="Patient's wish")
    assert shown_messages(response) == [
        ("error", "The email to the requester could not be sent, so nothing was changed. Try again.")
    ]
    assert request_for.status == Objection.Status.VERIFIED
    assert "objection.upheld" not in trail(request_for)


def test_a_plain_rejection_needs_no_clinician(ig_client, patient, request_for):
    step(ig_client, request_for, "reject", reason="Could not confirm identity after three attempts", confirm="yes")
    assert request_for.status == Objection.Status.REJECTED and request_for.clinician_name == ""


def test_matching_refuses_what_it_cannot_find(ig_client, request_for):
    for data, message in (
        ({}, "Choose one of the candidate patients, or enter an NHS number."),
        ({"nhs_number": "999 000 0001"}, "This is not a valid NHS number"),
        ({"nhs_number": "9990000018"}, "No patient has the NHS number 9990000018."),
        ({"patient": "not-a-uuid"}, "That patient no longer exists"),
    ):
        response = step(ig_client, request_for, "match", **data)
        assert shown_messages(response)[0][0] == "error"
        assert shown_messages(response)[0][1].startswith(message), data
        assert request_for.patient is None


def test_professional_requests_arrive_matched_and_no_email_means_ig_is_told_to_phone(
    ig_client, clinician, patient, ig_user
):
    patient.email = ""
    patient.save()
    objection = actions.record_professional_objection(
        by=clinician, patient=patient, reason="Told me at the surgery", how_told="in-person", region=Region.NCL
    )
    step(ig_client, objection, "verify", **CHECKED)
    response = step(ig_client, objection, "uphold", reason="Patient's wish")
    assert objection.status == Objection.Status.UPHELD
    assert "There is no email address: tell the requester by phone" in shown_messages(response)[0][1]
    assert mail.outbox == []
    assert trail(objection) == ["objection.recorded", "objection.verified", "objection.upheld"]


def test_steps_are_post_only_and_need_the_change_permission(ig_client, request_for):
    url = reverse("admin:optout_objection_verify", args=[request_for.pk])
    assert ig_client.get(url).status_code == 405
    assert ig_client.post(reverse("admin:optout_objection_verify", args=[999_999])).status_code == 404
    missing = ig_client.get(reverse("admin:optout_objection_change", args=[999_999]))
    assert missing.status_code == 302  # Django's own "doesn't exist" message on the admin index

    viewer = factories.UserFactory(is_staff=True)
    viewer.user_permissions.add(*information_governance_group().permissions.filter(codename="view_objection"))
    client = Client()
    client.force_login(viewer)
    assert client.get(change_url(request_for)).status_code == 200
    assert client.post(url).status_code == 403
    assert b"objection-workflow" in client.get(change_url(request_for)).content  # the trail still shows

    client.logout()
    response = client.post(url)
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    request_for.refresh_from_db()
    assert request_for.status == Objection.Status.RECEIVED


def test_the_row_cannot_be_added_edited_or_deleted_in_admin(ig_client, request_for):
    assert ig_client.get(reverse("admin:optout_objection_add")).status_code == 403
    response = ig_client.post(change_url(request_for), {"status": "upheld", "given_name": "Edited"})
    assert response.status_code == 403
    assert ig_client.get(reverse("admin:optout_objection_delete", args=[request_for.pk])).status_code == 403
    request_for.refresh_from_db()
    assert request_for.status == Objection.Status.RECEIVED and request_for.given_name != "Edited"
    listing = ig_client.get(reverse("admin:optout_objection_changelist"))
    assert b"delete_selected" not in listing.content


def test_the_queue_oldest_first_with_age_filters_and_search(ig_client, patient, clinician, settings):
    settings.OPTOUT_RESPONSE_DAYS = 30
    old = actions.submit_objection(
        given_name="Mo",
        family_name="Farah-Lane",
        date_of_birth=datetime.date(1970, 1, 2),
        postcode="SE1 7EH",
        contact_phone="020 7946 0000",
        region=Region.SEL,
        nhs_number="",
        received_at=days_ago(12),
    )
    recorded = actions.record_professional_objection(
        by=clinician, patient=patient, reason="x", how_told="telephone", region=Region.NCL
    )
    changelist = reverse("admin:optout_objection_changelist")

    response = ig_client.get(changelist)
    assert list(response.context["cl"].result_list) == [old, recorded]
    body = response.content.decode()
    for heading in ("Reference", "Status", "Received at", "Age and response due", "Requester", "Region"):
        assert heading in body
    assert '<td class="field-age">12 days — due in 18 days</td>' in body
    assert "SE1 7EH" not in body  # no postcode in the queue: a professional's case copies the patient's

    def found(**params):
        return list(ig_client.get(changelist, params).context["cl"].result_list)

    assert found(queue="received", source="professional") == [recorded]
    assert found(region="SEL") == [old]
    assert found(q=old.reference.lower()) == [old]
    assert found(q="farah-lane") == [old]
    assert found(q="se1 7eh") == [old]
    assert found(q=patient.nhs_number_display) == [recorded]
    assert found(o="3") == [recorded, old]  # by age, youngest first


def test_every_optout_admin_page_opens(ig_client, request_for):
    RegionalProcess.objects.create(region=Region.SEL, title="SEL", body="Text")
    for model in (m for m in admin.site._registry if m._meta.app_label == "optout"):
        opts = model._meta
        assert ig_client.get(reverse(f"admin:optout_{opts.model_name}_changelist")).status_code == 200
        item = model.objects.first()
        assert ig_client.get(reverse(f"admin:optout_{opts.model_name}_change", args=[item.pk])).status_code == 200


def test_ig_edits_the_regional_process_text_and_the_change_is_audited(ig_client, ig_user):
    process = RegionalProcess.objects.create(region=Region.SWL, title="Old title", body="Old text")
    url = reverse("admin:optout_regionalprocess_change", args=[process.pk])
    response = ig_client.post(
        url,
        {
            "title": "Through your GP practice or online",
            "body": "Tell your GP practice.\n\nOr use the online form.",
            "contact_email": "swl.optout@example.nhs.uk",
            "contact_phone": "0300 000 0000",
        },
    )
    assert response.status_code == 302, response.context and response.context["adminform"].form.errors
    process.refresh_from_db()
    assert process.title == "Through your GP practice or online" and process.region == Region.SWL
    event = AuditEvent.objects.get(action="regional-process.changed")
    assert event.actor_email == ig_user.email and event.detail["region"] == "SWL"
    assert "title" in event.detail["fields"]
    assert ig_client.get(reverse("admin:optout_regionalprocess_delete", args=[process.pk])).status_code == 403

    public = Client().get(reverse("optout-how")).content.decode()
    assert "Through your GP practice or online" in public and "swl.optout@example.nhs.uk" in public


def test_candidates_by_nhs_number_or_family_name_with_the_date_of_birth(ig_client, patient):
    born = patient.date_of_birth
    namesake = factories.PatientFactory(family_name=patient.family_name, given_name="Other", date_of_birth=born)
    factories.PatientFactory(family_name=patient.family_name, date_of_birth=born - datetime.timedelta(days=1))
    by_number = factories.PatientFactory(family_name="Married-Name", date_of_birth=born)
    objection = actions.submit_objection(
        given_name=patient.given_name,
        family_name=patient.family_name,
        date_of_birth=born,
        nhs_number=by_number.nhs_number,
        postcode=patient.postcode,
        contact_phone="020 7946 0001",
        region=Region.SEL,
    )
    candidates = ig_client.get(change_url(objection)).context["workflow"]["candidates"]
    assert [(c.patient, c.matched_on) for c in candidates] == [
        (by_number, ("NHS number", "date of birth")),
        (patient, ("date of birth", "family name", "given name", "postcode")),
        (namesake, ("date of birth", "family name")),
    ]

    step(ig_client, objection, "match", patient=str(namesake.pk))
    candidates = ig_client.get(change_url(objection)).context["workflow"]["candidates"]
    assert [c.patient for c in candidates if c.current] == [namesake]
    step(ig_client, objection, "verify", **CHECKED)
    step(ig_client, objection, "match", patient=str(patient.pk))  # still open: IG may correct the match
    assert objection.patient == patient and objection.status == Objection.Status.VERIFIED


def test_save_regional_process_saves_the_text_and_audits_the_fields_named(ig_user):
    process = RegionalProcess(region=Region.NCL, title="Write to us", body="Write to the ICB.")
    actions.save_regional_process(by=ig_user, process=process, changed=["region", "title", "body"])
    assert RegionalProcess.objects.get(region=Region.NCL).title == "Write to us"
    [event] = AuditEvent.objects.filter(target_type="RegionalProcess")
    assert event.action == Action.REGIONAL_PROCESS_CHANGED
    assert (event.actor_id, event.actor_email, event.target_id, event.patient_id) == (
        ig_user.pk,
        ig_user.email,
        str(process.pk),
        None,
    )
    assert event.detail == {"region": "NCL", "fields": "region,title,body"}


@pytest.mark.hazard("H-01")
def test_finding_1_objection_matching_page_writes_one_access_event_per_candidate_shown(
    ig_client, ig_user, patient, request_for
):
    """Candidates show a patient's date of birth, postcode and practice: each is a look at that patient, written
    once per page view with basis "ig-admin", and in their "who has seen this record"."""
    namesake = factories.PatientFactory(
        given_name="Adele", family_name=patient.family_name, date_of_birth=patient.date_of_birth
    )
    before = AccessEvent.objects.count()
    assert ig_client.get(reverse("admin:optout_objection_changelist")).status_code == 200
    assert AccessEvent.objects.count() == before  # the queue shows what requesters wrote, not the record

    page = ig_client.get(change_url(request_for))
    shown = {candidate.patient for candidate in page.context["workflow"]["candidates"]}
    assert shown == {patient, namesake}
    events = AccessEvent.objects.filter(request_id=page["X-Request-ID"])
    assert AccessEvent.objects.count() == before + 2
    assert {event.patient_id for event in events} == {patient.pk, namesake.pk}
    for event in events:
        assert (event.basis, event.outcome, event.page, event.user_id) == (
            AccessBasis.IG_ADMIN,
            AccessOutcome.ALLOWED,
            "admin:objection-match",
            ig_user.pk,
        )
    seen = ig_client.get(reverse("admin:audit_accessevent_patient", args=[namesake.pk]))
    assert [event.page for event in seen.context["page_obj"].object_list] == ["admin:objection-match"]

    # Once matched, verified and upheld there is nobody to choose between: the page shows no candidate.
    step(ig_client, request_for, "match", patient=str(patient.pk))
    step(ig_client, request_for, "verify", **CHECKED)
    step(ig_client, request_for, "uphold", reason="The patient's wish.")
    before = AccessEvent.objects.count()
    closed = ig_client.get(change_url(request_for))
    assert closed.context["workflow"]["candidates"] == []
    assert AccessEvent.objects.count() == before
