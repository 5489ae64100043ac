"""A real FHIR client from PyPI (fhirpy) reads a patient's record from a live server."""

import pytest
from fhirpy import SyncFHIRClient

from directory.actions import create_api_token
from tests import factories

from .conftest import bundle, import_json, patient_resource

pytestmark = pytest.mark.django_db(transaction=True)


def test_fhirpy_reads_a_record(live_server, clinician, patient, full_record, other_organisation):
    for n in range(3):
        factories.AllergyFactory(patient=patient, source_organisation=other_organisation, substance=f"Substance {n}")
    _, secret = create_api_token(by=None, name="viewer", user=clinician)
    client = SyncFHIRClient(f"{live_server.url}/fhir", authorization=f"Bearer {secret}")

    found = client.resources("Patient").search(identifier=f"https://fhir.nhs.uk/Id/nhs-number|{patient.nhs_number}")
    [resource] = found.fetch()
    assert resource.id == str(patient.pk) and resource["name"][0]["family"] == "Testperson"

    read = client.reference("Patient", str(patient.pk)).to_resource()
    assert read["birthDate"] == patient.date_of_birth.isoformat()

    # fetch_all follows the server's `next` links page by page.
    allergies = client.resources("AllergyIntolerance").search(patient=str(patient.pk)).limit(2).fetch_all()
    assert len(allergies) == 4

    conditions = client.resources("Condition").search(patient=str(patient.pk)).fetch()
    assert [c["code"]["text"] for c in conditions] == ["Type 2 diabetes mellitus"]

    # Issue 13: immunisations and procedures, categories of their own, read as FHIR Immunization and Procedure.
    [immunisation] = client.resources("Immunization").search(patient=str(patient.pk)).fetch()
    assert immunisation["vaccineCode"]["coding"][0]["code"] == "836377006"
    assert immunisation["status"] == "completed" and immunisation["lotNumber"] == "FL2291"
    assert client.reference("Immunization", immunisation.id).to_resource()["id"] == immunisation.id
    [procedure] = client.resources("Procedure").search(patient=str(patient.pk)).fetch()
    assert procedure["code"]["text"] == "Total replacement of hip" and procedure["bodySite"][0]["text"] == "Left hip"
    everything = client.execute(f"Patient/{patient.pk}/$everything", method="get")
    kinds = {entry["resource"]["resourceType"] for entry in everything["entry"]}
    assert {"Immunization", "Procedure"} <= kinds


def test_fhirpy_reads_attendances_referrals_dispensings_and_administrations(live_server, clinician, patient, sender):
    """Issue 13: each as the type it arrived as (fhirapi/mapping/appointments.py, medications.py)."""
    subject = {"reference": "Patient/p1"}
    drug = {"text": "Amoxicillin 500mg capsules"}
    import_json(
        bundle(
            "batch",
            patient_resource(nhs_number=patient.nhs_number, family=patient.family_name),
            {
                "resourceType": "Encounter",
                "id": "e1",
                "status": "in-progress",
                "subject": subject,
                "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
            },
            {
                "resourceType": "ServiceRequest",
                "id": "sr1",
                "status": "active",
                "intent": "order",
                "code": {"text": "Podiatry"},
                "subject": subject,
            },
            {
                "resourceType": "MedicationDispense",
                "id": "d1",
                "status": "completed",
                "medicationCodeableConcept": drug,
                "subject": subject,
            },
            {
                "resourceType": "MedicationAdministration",
                "id": "a1",
                "status": "completed",
                "medicationCodeableConcept": drug,
                "subject": subject,
                "effectiveDateTime": "2026-03-01",
            },
        ),
        sender,
    )
    _, secret = create_api_token(by=None, name="viewer", user=clinician)
    client = SyncFHIRClient(f"{live_server.url}/fhir", authorization=f"Bearer {secret}")
    for kind, element, value in (
        ("Encounter", "status", "in-progress"),
        ("ServiceRequest", "code", {"text": "Podiatry"}),
        ("MedicationDispense", "medicationCodeableConcept", drug),
        ("MedicationAdministration", "effectiveDateTime", "2026-03-01"),
    ):
        [resource] = client.resources(kind).search(patient=str(patient.pk)).fetch()
        assert resource[element] == value, kind
        assert client.reference(kind, resource.id).to_resource()["id"] == resource.id
