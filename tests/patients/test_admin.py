"""Issue 11, finding 1: IG staff read every record in Django admin, unaudited.

IG work objections, break glass, audit, the directory and sharing agreements in admin; they do not browse
clinical entries there. No entry model is in admin (for superusers neither), the IG group holds no permission on
one, and what admin still shows of a patient (the Patient page, the Patient search, the patient picker) writes
one AccessEvent per patient shown, basis "ig-admin", which appears in "who has seen this record".
"""

import pytest
from django.contrib import admin
from django.urls import reverse

from audit.models import AccessBasis, AccessEvent, AccessOutcome
from demo.accounts import information_governance_group
from patients.categories import REGISTRY
from patients.models import Observation, Patient, SourcePatientId, SourceResource, SupportPerson
from tests import factories

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("admin_settings")]

# Every model holding a patient's record, or tying a source's ids to patients: none is browsable in admin.
ENTRY_ADMIN_MODELS = [
    *(entry.model for entry in REGISTRY.values()),
    Observation,
    SupportPerson,
    SourcePatientId,
    SourceResource,
]
CLINICAL_MARKERS = ["Type 2 diabetes", "Penicillin", "Metformin", "Lives alone", "Discharge summary", "HbA1c"]


@pytest.fixture
def records(patient, full_record, organisation):
    """`patient`'s full record, every entry sensitive (the worst case), plus the import bookkeeping."""
    for model, entry in full_record.items():
        model.objects.filter(pk=entry.pk).update(sensitive=True)
    SourcePatientId.objects.create(organisation=organisation, resource_id="pat-1", patient=patient)
    SourceResource.objects.create(organisation=organisation, resource_id="prac-1", name="Dr A Practitioner")
    return full_record


def entry_urls(model):
    """Where Django would serve the model's admin pages, were it registered (no reverse(): it is not)."""
    base = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
    item = model.objects.order_by("pk").first()
    assert item is not None, model
    return [base, f"{base}?sensitive__exact=1", f"{base}{item.pk}/change/", f"{base}add/"]


def new_events(before):
    return AccessEvent.objects.filter(pk__gt=before).order_by("pk")


def last_event_pk():
    return AccessEvent.objects.order_by("-pk").values_list("pk", flat=True).first() or 0


@pytest.mark.hazard("H-01")
@pytest.mark.parametrize("actor", ["ig_user", "ig_officer"])  # the IG group's officer, and a superuser
def test_finding_1_ig_cannot_browse_clinical_entries_in_admin(request, client, actor, records):
    client.force_login(request.getfixturevalue(actor))
    before = last_event_pk()
    for model in ENTRY_ADMIN_MODELS:
        assert model not in admin.site._registry, model
        for url in entry_urls(model):
            response = client.get(url)
            assert response.status_code == 404, url
            body = response.content.decode()
            assert not any(marker in body for marker in CLINICAL_MARKERS), url
    assert not new_events(before).exists()
    index = client.get(reverse("admin:index")).content.decode()
    for model in ENTRY_ADMIN_MODELS:
        assert f"/admin/patients/{model._meta.model_name}/" not in index, model


def test_finding_1_ig_group_holds_no_permission_on_clinical_entries():
    patients_permissions = information_governance_group().permissions.filter(content_type__app_label="patients")
    # Finding a patient's demographics in admin, nothing else: no entry model, no `read_shared_record`.
    assert set(patients_permissions.values_list("codename", flat=True)) == {"view_patient"}


def test_finding_1_patient_page_writes_one_ig_admin_access_event_shown_in_who_has_seen(
    ig_client, ig_user, patient, records
):
    before = last_event_pk()
    response = ig_client.get(reverse("admin:patients_patient_change", args=[patient.pk]))
    assert response.status_code == 200
    body = response.content.decode()
    assert patient.nhs_number_display in body or patient.nhs_number in body
    # Identity and demographics only: no entry, no support network ("Bernard Testperson").
    assert not any(marker in body for marker in CLINICAL_MARKERS)
    assert "Bernard Testperson" not in body  # the support network's (a Faker first name may be Bernard too)

    (event,) = new_events(before)
    assert (event.outcome, event.basis, event.reason, event.page) == (
        AccessOutcome.ALLOWED,
        AccessBasis.IG_ADMIN,
        "",
        "admin:patient",
    )
    assert (event.user_id, event.user_email, event.patient_id, event.patient_nhs_number) == (
        ig_user.pk,
        ig_user.email,
        patient.pk,
        patient.nhs_number,
    )
    assert event.professional_name == ig_user.professional.name
    assert event.request_id == response["X-Request-ID"]

    seen = ig_client.get(reverse("admin:audit_accessevent_patient", args=[patient.pk]))
    assert event in seen.context["page_obj"].object_list
    assert "IG administration" in seen.content.decode()
    assert not new_events(event.pk).exists()  # reading the access log is not a look at the record


def test_finding_1_patient_list_lists_nobody_until_a_search_then_audits_each_patient_shown(
    ig_client, ig_user, patient, records
):
    namesake = factories.PatientFactory(given_name="Adam", family_name="Testperson")
    changelist = reverse("admin:patients_patient_changelist")

    before = last_event_pk()
    browse = ig_client.get(changelist)
    assert browse.status_code == 200
    assert list(browse.context["cl"].result_list) == []
    assert patient.nhs_number_display not in browse.content.decode()
    assert ig_client.get(changelist, {"sex__exact": "female"}).context["cl"].result_count == 0  # filters alone: nobody
    assert not new_events(before).exists()

    response = ig_client.get(changelist, {"q": patient.nhs_number_display})  # as read off a letter
    assert list(response.context["cl"].result_list) == [patient]
    assert patient.nhs_number_display in response.content.decode()
    (event,) = new_events(before)
    assert (event.basis, event.page, event.patient_id, event.user_id) == (
        AccessBasis.IG_ADMIN,
        "admin:patient-search",
        patient.pk,
        ig_user.pk,
    )
    assert patient.nhs_number not in event.path  # the search term stays out of the trail

    before = event.pk
    both = ig_client.get(changelist, {"q": "testper"})
    assert set(both.context["cl"].result_list) == {patient, namesake}
    assert sorted(new_events(before).values_list("patient_id", flat=True)) == sorted([patient.pk, namesake.pk])

    before = last_event_pk()
    nobody = ig_client.get(changelist, {"q": "Nosuchname"})
    assert list(nobody.context["cl"].result_list) == []
    (miss,) = new_events(before)
    assert (miss.patient_id, miss.reason, miss.basis) == (None, "no-match", AccessBasis.IG_ADMIN)


def test_finding_1_patient_picker_offers_nobody_without_a_term_and_audits_each_patient_offered(
    ig_client, ig_user, patient
):
    picker = reverse("admin:autocomplete")
    query = {"app_label": "sharing", "model_name": "involvement", "field_name": "patient"}

    before = last_event_pk()
    empty = ig_client.get(picker, query)
    assert empty.status_code == 200 and empty.json()["results"] == []
    assert not new_events(before).exists()

    found = ig_client.get(picker, {**query, "term": patient.nhs_number_display})
    assert [result["id"] for result in found.json()["results"]] == [str(patient.pk)]
    (event,) = new_events(before)
    assert (event.basis, event.page, event.patient_id, event.user_id) == (
        AccessBasis.IG_ADMIN,
        "admin:patient-picker",
        patient.pk,
        ig_user.pk,
    )


@pytest.mark.parametrize("actor", ["ig_user", "ig_officer"])
def test_finding_1_patients_are_not_deleted_in_admin(request, client, actor, patient, records):
    """The confirmation page would list every entry of the record (which would be deleted with the patient)."""
    client.force_login(request.getfixturevalue(actor))
    before = last_event_pk()
    response = client.get(reverse("admin:patients_patient_delete", args=[patient.pk]))
    assert response.status_code == 403
    assert not any(marker in response.content.decode() for marker in CLINICAL_MARKERS)
    assert client.post(reverse("admin:patients_patient_delete", args=[patient.pk]), {"post": "yes"}).status_code == 403
    assert Patient.objects.filter(pk=patient.pk).exists()
    assert not new_events(before).exists()


def test_finding_1_superuser_patient_page_is_audited_too(client, ig_officer, patient, records):
    client.force_login(ig_officer)
    before = last_event_pk()
    body = client.get(reverse("admin:patients_patient_change", args=[patient.pk])).content.decode()
    assert not any(marker in body for marker in CLINICAL_MARKERS)
    (event,) = new_events(before)
    assert (event.basis, event.page, event.user_id) == (AccessBasis.IG_ADMIN, "admin:patient", ig_officer.pk)
