"""What partners sent, in admin for IG (fhirapi/admin.py): read-only, filterable by sender and kind, and
nothing of any patient on it (no AccessEvent is written, no resource or version is shown)."""

import datetime

import pytest
from django.contrib import admin
from django.urls import reverse
from django.utils import timezone

from audit.models import AccessEvent
from fhirapi.models import ReceivedResource, Submission
from tests import factories

from .conftest import bundle, condition_resource, patient_resource

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("admin_settings")]

CHANGELIST = "admin:fhir_submission_changelist"


@pytest.fixture
def sent(api, sender, sender_token, patient):
    """A transaction about `patient` through the API, and a resource another organisation sent a day before."""
    transaction = bundle(
        "transaction",
        patient_resource(nhs_number=patient.nhs_number, family=patient.family_name),
        condition_resource(name="Type 2 diabetes mellitus"),
    )
    transaction["identifier"] = {"system": "https://trust.example/bundles", "value": "b-9"}
    response = api.post("/fhir/", transaction, token=sender_token)
    assert response.status_code == 200, response.content
    older = Submission.objects.create(
        organisation=factories.OrganisationFactory(ods_code="Y0001"),
        received_at=timezone.now() - datetime.timedelta(days=1),
        endpoint="POST /fhir/Condition",
    )
    return Submission.objects.get(bundle_type="transaction"), older


def listed(response):
    assert response.status_code == 200
    return list(response.context["cl"].result_list)


def test_ig_list_submissions_newest_first_and_filter_them(ig_client, sent, sender):
    submission, older = sent
    assert listed(ig_client.get(reverse(CHANGELIST))) == [submission, older]
    assert listed(ig_client.get(reverse(CHANGELIST), {"ods_code": sender.ods_code.lower()})) == [submission]
    assert listed(ig_client.get(reverse(CHANGELIST), {"sent_as": "transaction"})) == [submission]
    assert listed(ig_client.get(reverse(CHANGELIST), {"sent_as": "resource"})) == [older]
    assert listed(ig_client.get(reverse(CHANGELIST), {"q": "https://trust.example/bundles|b-9"})) == [submission]
    assert listed(ig_client.get(reverse(CHANGELIST), {"q": submission.request_id})) == [submission]


def test_a_submission_page_names_the_sender_and_links_its_audit_row(ig_client, sent, sender):
    submission, _ = sent
    response = ig_client.get(reverse("admin:fhir_submission_change", args=[submission.pk]))
    assert response.status_code == 200
    body = response.content.decode()
    assert sender.name in body and "EPR feed" in body and "POST /fhir/" in body
    audit_rows = reverse("admin:audit_auditevent_changelist") + "?target_type=SubmissionTarget&amp;target_id="
    assert audit_rows + submission.request_id in body
    [row] = listed(ig_client.get(audit_rows.replace("&amp;", "&") + submission.request_id))
    assert row.action == "fhir.submission"
    assert row.detail["bundle_type"] == "transaction" and row.detail["token_name"] == "EPR feed"


@pytest.mark.hazard("H-11")
def test_no_patient_data_on_the_pages_and_no_access_event(ig_client, sent, patient):
    submission, _ = sent
    before = AccessEvent.objects.count()
    for url in (reverse(CHANGELIST), reverse("admin:fhir_submission_change", args=[submission.pk])):
        body = ig_client.get(url).content.decode()
        for marker in (patient.nhs_number, patient.family_name, "diabetes", str(patient.pk)):
            assert marker not in body, (url, marker)
    assert AccessEvent.objects.count() == before
    assert ReceivedResource not in admin.site._registry


def test_submissions_cannot_be_added_changed_or_deleted(ig_client, ig_officer, client, sent):
    submission, _ = sent
    assert ig_client.get(reverse("admin:fhir_submission_add")).status_code == 403
    assert ig_client.get(reverse("admin:fhir_submission_delete", args=[submission.pk])).status_code == 403
    response = ig_client.post(reverse("admin:fhir_submission_change", args=[submission.pk]), {"endpoint": "x"})
    assert response.status_code == 403
    client.force_login(ig_officer)  # a superuser neither
    assert client.get(reverse("admin:fhir_submission_add")).status_code == 403
    assert client.get(reverse("admin:fhir_submission_delete", args=[submission.pk])).status_code == 403
    submission.refresh_from_db()
    assert submission.endpoint == "POST /fhir/"


def test_a_professional_without_the_permission_is_refused(client, sent):
    staff = factories.UserFactory(is_staff=True)
    client.force_login(staff)
    assert client.get(reverse(CHANGELIST)).status_code == 403
