import datetime

import pytest
from django.urls import reverse
from django.utils import timezone

from audit.models import AccessEvent, AuditEvent
from sharing import access, actions
from sharing.models import BreakGlass

pytestmark = pytest.mark.django_db


def break_glass(client, patient, **data):
    form = {"reason_code": "emergency-treatment", "reason_text": "", "confirm": "on", **data}
    return client.post(reverse("break-glass", args=[patient.pk]), form)


def test_refusal_page_offers_break_glass(client, clinician_other_org, patient):
    client.force_login(clinician_other_org)
    body = client.get(reverse("record-summary", args=[patient.pk])).content.decode()
    assert reverse("break-glass", args=[patient.pk]) in body
    assert "Emergency treatment" in body


def test_break_glass_opens_the_record_with_a_banner_and_audits_it(client, clinician_other_org, patient, full_record):
    client.force_login(clinician_other_org)
    response = break_glass(client, patient, reason_code="unable-to-consent")
    assert response.status_code == 302
    page = client.get(reverse("record-summary", args=[patient.pk]))
    assert page.status_code == 200
    assert "emergency access" in page.content.decode().lower()
    grant = BreakGlass.objects.get()
    assert grant.review_outcome == BreakGlass.Outcome.PENDING
    assert grant.expires_at - grant.started_at == datetime.timedelta(hours=4)
    assert AccessEvent.objects.filter(basis="break-glass", outcome="allowed", patient_id=patient.pk).count() == 1
    assert AuditEvent.objects.filter(action="break-glass.started", patient_id=patient.pk).exists()


def test_break_glass_is_for_that_patient_only(client, clinician_other_org, patient):
    from tests import factories

    other = factories.PatientFactory()
    client.force_login(clinician_other_org)
    break_glass(client, patient)
    assert client.get(reverse("record-summary", args=[other.pk])).status_code == 403


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"reason_code": ""}, "Select why you need emergency access"),
        ({"reason_code": "other", "reason_text": "  "}, "Give the reason"),
        ({"confirm": ""}, "Confirm that you need emergency access"),
        ({"reason_code": "because"}, "Select a valid choice"),
    ],
)
def test_bad_break_glass_request_is_refused_with_a_field_error(client, clinician_other_org, patient, data, message):
    client.force_login(clinician_other_org)
    response = break_glass(client, patient, **data)
    assert response.status_code == 403
    assert message in response.content.decode()
    assert not BreakGlass.objects.exists()
    assert not access.decide(clinician_other_org, patient).allowed


def test_expired_break_glass_is_refused_again(clinician_other_org, patient):
    grant = actions.break_glass(by=clinician_other_org, patient=patient, reason_code="emergency-treatment")
    assert access.decide(clinician_other_org, patient).basis == "break-glass"
    BreakGlass.objects.filter(pk=grant.pk).update(expires_at=timezone.now() - datetime.timedelta(seconds=1))
    assert not access.decide(clinician_other_org, patient).allowed


def test_care_team_basis_outranks_break_glass(clinician, patient):
    actions.break_glass(by=clinician, patient=patient, reason_code="emergency-treatment")
    assert access.decide(clinician, patient).basis == "care-team"


def test_deactivated_or_profile_less_users_cannot_break_glass(client, deactivated, no_profile_user, patient):
    client.force_login(no_profile_user)
    assert break_glass(client, patient).status_code == 403
    assert not BreakGlass.objects.exists()


def test_break_glass_on_a_missing_patient_looks_like_a_refusal(client, clinician_other_org, patient):
    import uuid

    client.force_login(clinician_other_org)
    missing = client.post(
        reverse("break-glass", args=[uuid.uuid4()]), {"reason_code": "emergency-treatment", "confirm": "on"}
    )
    assert missing.status_code == 403
    assert not BreakGlass.objects.exists()


def test_review_records_an_outcome_and_is_audited(ig_officer, clinician_other_org, patient):
    grant = actions.break_glass(by=clinician_other_org, patient=patient, reason_code="safeguarding")
    actions.review_break_glass(by=ig_officer, break_glass=grant, outcome="appropriate", note="Seen in ED")
    grant.refresh_from_db()
    assert grant.reviewed_by == ig_officer and grant.review_outcome == "appropriate"
    event = AuditEvent.objects.get(action="break-glass.reviewed")
    assert event.actor_id == ig_officer.pk and event.detail["outcome"] == "appropriate"
    with pytest.raises(ValueError):
        actions.review_break_glass(by=ig_officer, break_glass=grant, outcome="")


OBJECTION_WARNING = "Emergency access does not override it: you will see only the information your own organisation"


@pytest.fixture
def opted_out(patient, ig_officer):
    from tests.sharing.test_coverage import upheld_objection

    upheld_objection(patient, ig_officer)
    return patient


@pytest.mark.hazard("H-12")
def test_before_confirming_the_form_says_an_opted_out_patient_shows_only_own_organisation_entries(
    client, clinician_other_org, opted_out
):
    client.force_login(clinician_other_org)
    response = client.get(reverse("record-summary", args=[opted_out.pk]))
    assert response.status_code == 403
    body = response.content.decode()
    form = body[body.index('class="nhsuk-card nhsuk-card--warning app-break-glass"') :]
    assert "This patient has opted out of sharing" in form and OBJECTION_WARNING in form
    assert form.index(OBJECTION_WARNING) < form.index("I confirm I need this record")  # before the confirmation
    assert not BreakGlass.objects.exists()


@pytest.mark.hazard("H-12")
def test_a_refused_break_glass_request_keeps_the_warning(client, clinician_other_org, opted_out):
    client.force_login(clinician_other_org)
    response = break_glass(client, opted_out, confirm="")
    assert response.status_code == 403 and OBJECTION_WARNING in response.content.decode()


@pytest.mark.hazard("H-12")
def test_no_objection_no_warning(client, clinician_other_org, patient):
    client.force_login(clinician_other_org)
    assert OBJECTION_WARNING not in client.get(reverse("record-summary", args=[patient.pk])).content.decode()
    assert OBJECTION_WARNING not in break_glass(client, patient, confirm="").content.decode()


@pytest.mark.hazard("H-12")
def test_break_glass_on_an_opted_out_patient_then_shows_only_own_organisation_entries(
    client, clinician_other_org, opted_out, other_organisation, organisation
):
    from tests import factories

    factories.ConditionFactory(patient=opted_out, source_organisation=other_organisation, name="Own condition")
    factories.ConditionFactory(patient=opted_out, source_organisation=organisation, name="Practice condition")
    client.force_login(clinician_other_org)
    assert break_glass(client, opted_out).status_code == 302
    body = client.get(reverse("record-summary", args=[opted_out.pk])).content.decode()
    assert "This patient has opted out of sharing" in body
    assert "Own condition" in body and "Practice condition" not in body
