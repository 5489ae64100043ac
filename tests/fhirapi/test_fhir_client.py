"""A real FHIR client from PyPI (fhirpy) reads a patient's record from a live server."""

import json

import pytest
from fhirpy import SyncFHIRClient
from fhirpy.base.exceptions import ForbiddenError, OperationOutcome, ResourceNotFound

from directory.actions import create_api_token
from patients.models import Condition
from tests import factories

from .conftest import bundle, condition_resource, import_json, patient_resource

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


# Issue 14: search parameters, paging by next links, _include, _sort, vread and _history, through fhirpy's own
# query builder (it writes `onset_date__ge=` as `onset-date=ge…`, `.include()` as `_include`, `.sort()` as `_sort`).

SNOMED = "http://snomed.info/sct"
RESOLVED = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "resolved"}]}


def problems(patient, sender) -> dict[str, str]:
    """Three problems, two active; diabetes sent twice (two versions). Returns {sender's id: our id}."""
    diabetes = condition_resource("c1", note=[{"text": "First version"}])
    import_json(
        bundle(
            "batch",
            patient_resource(nhs_number=patient.nhs_number, family=patient.family_name),
            diabetes,
            condition_resource("c2", name="Asthma", clinicalStatus=RESOLVED, onsetDateTime="2010-05-01"),
            condition_resource(
                "c3",
                onsetDateTime="2022-03-01",
                code={"coding": [{"system": SNOMED, "code": "38341003", "display": "Hypertension"}]},
            ),
        ),
        sender,
    )
    import_json(bundle("batch", {**diabetes, "note": [{"text": "Second version"}]}), sender)
    return {row.source_id.removeprefix("Condition/"): str(row.pk) for row in Condition.objects.filter(patient=patient)}


@pytest.mark.hazard("H-16")
def test_fhirpy_searches_with_parameters_pages_and_includes(live_server, clinician, patient, sender):
    ours = problems(patient, sender)
    _, secret = create_api_token(by=None, name="viewer", user=clinician)
    client = SyncFHIRClient(f"{live_server.url}/fhir", authorization=f"Bearer {secret}")
    conditions = client.resources("Condition").search(patient=str(patient.pk))

    active = conditions.search(**{"clinical-status": "active"}).include("Condition", "patient").limit(1)
    assert sorted(c.id for c in active.fetch_all()) == sorted([ours["c1"], ours["c3"]])  # two pages, by next links
    first = active.fetch_raw()
    assert [(e["resource"]["resourceType"], e["search"]["mode"]) for e in first["entry"]] == [
        ("Condition", "match"),
        ("Patient", "include"),
    ]
    assert first["total"] == 2 and [link["relation"] for link in first["link"]] == ["self", "next"]

    assert [c.id for c in conditions.search(code=f"{SNOMED}|38341003").fetch()] == [ours["c3"]]
    assert sorted(c.id for c in conditions.search(onset_date__ge="2015-01-01").fetch()) == sorted(
        [ours["c1"], ours["c3"]]
    )
    assert [c["onsetDateTime"] for c in conditions.sort("date").fetch()] == ["2010-05-01", "2020-01-01", "2022-03-01"]
    assert [c.id for c in conditions.sort("-date").fetch()] == [ours["c3"], ours["c1"], ours["c2"]]

    # fhirpy's count() adds _totalMethod, which carerecord does not implement: refused, not ignored ...
    with pytest.raises(OperationOutcome) as refused:
        conditions.count()
    [issue] = refused.value.resource["issue"]
    assert (issue["code"], issue["expression"]) == ("not-supported", ["_totalMethod"])
    # ... unless the client asks for leniency: then ignored, and the total is the truth.
    lenient = SyncFHIRClient(
        f"{live_server.url}/fhir", authorization=f"Bearer {secret}", extra_headers={"Prefer": "handling=lenient"}
    )
    assert lenient.resources("Condition").search(patient=str(patient.pk)).count() == 3


@pytest.mark.hazard("H-17")
def test_fhirpy_reads_versions_and_history(live_server, clinician, patient, sender):
    ours = problems(patient, sender)
    _, secret = create_api_token(by=None, name="viewer", user=clinician)
    client = SyncFHIRClient(f"{live_server.url}/fhir", authorization=f"Bearer {secret}")
    diabetes = client.reference("Condition", ours["c1"])

    current = diabetes.to_resource()
    assert current["meta"]["versionId"] == "2" and current["note"] == [{"text": "Second version"}]
    history = diabetes.execute("_history", method="get")
    assert history["type"] == "history"
    assert [(e["resource"]["meta"]["versionId"], e["resource"]["note"][0]["text"]) for e in history["entry"]] == [
        ("2", "Second version"),
        ("1", "First version"),
    ]
    first = diabetes.execute("_history/1", method="get")
    assert (
        first["id"] == ours["c1"] and first["meta"]["versionId"] == "1" and first["note"][0]["text"] == "First version"
    )
    with pytest.raises(ResourceNotFound):
        diabetes.execute("_history/3", method="get")


@pytest.mark.hazard("H-16")
def test_fhirpy_gets_nothing_of_a_record_its_reader_may_not_see(live_server, outsider, patient, sender):
    ours = problems(patient, sender)
    _, secret = create_api_token(by=None, name="viewer", user=outsider)
    client = SyncFHIRClient(f"{live_server.url}/fhir", authorization=f"Bearer {secret}")
    for attempt in (
        lambda: client.resources("Condition").search(patient=str(patient.pk), code=f"{SNOMED}|38341003").fetch(),
        lambda: client.reference("Condition", ours["c1"]).execute("_history", method="get"),
        lambda: client.reference("Condition", ours["c1"]).execute("_history/1", method="get"),
    ):
        with pytest.raises(ForbiddenError) as refused:
            attempt()
        assert json.loads(str(refused.value))["issue"] == [
            {"severity": "error", "code": "forbidden", "diagnostics": "Record not available."}
        ]
