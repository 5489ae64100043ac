"""An upheld objection: from the next request no other organisation's entry is shown to anyone, on any
page; the viewer's own organisation's entries still are; nothing is deleted; withdrawal restores at once."""

import pytest
from django.urls import reverse

from directory.models import Region
from optout import actions as optout_actions
from patients import models as patient_models
from sharing import actions
from tests import factories
from tests.test_url_matrix import record_urls

pytestmark = pytest.mark.django_db

MARKER_FIELDS = {
    patient_models.Appointment: "service",
    patient_models.Condition: "name",
    patient_models.Medication: "name",
    patient_models.Alert: "text",
    patient_models.Allergy: "substance",
    patient_models.Result: "name",
    patient_models.Letter: "title",
    patient_models.CarePlan: "title",
    patient_models.CareEvent: "title",
}


@pytest.fixture
def two_sources(patient, organisation, other_organisation):
    """Per category, one entry from the viewer's organisation and one from another (distinct texts)."""
    for model, field in MARKER_FIELDS.items():
        entry_factory = factories.ENTRY_FACTORIES[model]
        entry_factory(patient=patient, source_organisation=organisation, **{field: f"Own {model.__name__} item"})
        entry_factory(
            patient=patient, source_organisation=other_organisation, **{field: f"Shared {model.__name__} item"}
        )
    other_team = factories.CareTeamFactory(organisation=other_organisation, name="Shared community team")
    factories.InvolvementFactory(patient=patient, care_team=other_team, reason="caseload")
    factories.SupportPersonFactory(patient=patient, source_organisation=other_organisation, name="Shared Carer")
    return patient


def upheld_objection(patient, ig):
    objection = optout_actions.record_professional_objection(
        by=ig, patient=patient, reason="Does not want sharing", how_told="in-person", region=Region.SEL
    )
    optout_actions.verify(by=ig, objection=objection, identity_check="documents")
    return optout_actions.uphold(by=ig, objection=objection, reason="Patient's wish")


def pages(client, patient):
    return {url: client.get(url) for url in record_urls(patient) if "/objection/" not in url}


def shared_markers():
    return [f"Shared {model.__name__} item" for model in MARKER_FIELDS] + ["Shared community team", "Shared Carer"]


@pytest.mark.hazard("H-02")
def test_upheld_objection_hides_other_organisations_everywhere_and_withdrawal_restores(
    client, clinician, ig_officer, two_sources
):
    patient = two_sources
    client.force_login(clinician)
    body = client.get(reverse("record-summary", args=[patient.pk])).content.decode()
    assert all(marker in body for marker in shared_markers())

    objection = upheld_objection(patient, ig_officer)
    seen_own = set()
    for url, response in pages(client, patient).items():
        if response.status_code == 404:  # the trend page of a test whose results are all hidden
            continue
        assert response.status_code == 200, url
        body = response.content.decode()
        assert "This patient has opted out of sharing" in body, url
        for marker in shared_markers():
            assert marker not in body, (url, marker)
        seen_own.update(model for model in MARKER_FIELDS if f"Own {model.__name__} item" in body)
    assert seen_own == set(MARKER_FIELDS)  # the viewer's own organisation's entries stay visible

    # Nothing was deleted.
    assert all(model.objects.filter(patient=patient).count() == 2 for model in MARKER_FIELDS)

    optout_actions.withdraw(by=ig_officer, objection=objection)
    body = client.get(reverse("record-summary", args=[patient.pk])).content.decode()
    assert "opted out" not in body
    assert all(marker in body for marker in shared_markers())


@pytest.mark.hazard("H-02")
@pytest.mark.hazard("H-12")
def test_break_glass_respects_the_objection(client, ig_officer, two_sources):
    patient = two_sources
    paramedic = factories.ProfessionalFactory(
        organisation=factories.OrganisationFactory(name="London Ambulance", kind="ambulance"), role="paramedic"
    ).user
    upheld_objection(patient, ig_officer)
    actions.break_glass(by=paramedic, patient=patient, reason_code="emergency-treatment")
    client.force_login(paramedic)
    for url, response in pages(client, patient).items():
        if response.status_code == 404:
            continue
        body = response.content.decode()
        assert "This patient has opted out of sharing" in body, url
        for marker in shared_markers():
            assert marker not in body, (url, marker)
        assert "Own Condition item" not in body  # the paramedic's organisation holds none of these


def test_search_still_finds_an_opted_out_patient(client, clinician, ig_officer, two_sources):
    patient = two_sources
    upheld_objection(patient, ig_officer)
    client.force_login(clinician)
    response = client.post(reverse("patient-search"), {"by": "nhs", "nhs_number": patient.nhs_number})
    assert response.context["results"] == [patient]


@pytest.mark.hazard("H-02")
def test_objection_not_yet_upheld_changes_nothing(client, clinician, ig_officer, two_sources):
    patient = two_sources
    optout_actions.record_professional_objection(
        by=clinician, patient=patient, reason="x", how_told="telephone", region=Region.SEL
    )
    client.force_login(clinician)
    body = client.get(reverse("record-summary", args=[patient.pk])).content.decode()
    assert "Shared Condition item" in body and "opted out" not in body


def test_a_professional_records_an_objection_from_the_record(client, clinician, patient):
    client.force_login(clinician)
    url = reverse("record-objection", args=[patient.pk])
    assert client.get(url).status_code == 200
    response = client.post(url, {"how_told": "in-person", "reason": "", "region": "SEL"})
    assert response.status_code == 400 and "Enter the patient" in response.content.decode()
    response = client.post(url, {"how_told": "in-person", "reason": "No reason given", "region": "SEL"})
    assert response.status_code == 200
    objection = patient.objections.get()
    assert objection.source == "professional" and objection.recorded_by == clinician
    assert objection.status == "received"
    assert objection.reference in response.content.decode()
