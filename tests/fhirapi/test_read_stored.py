"""A read gives back what the source sent (H-04, H-10): the resource kept, with carerecord's id, meta and
references; the sender's id as an identifier naming the sender; each entry as the type it arrived as, once. The
same access decision and visibility as the record pages (H-01, H-11); demographics always the master view
(H-06); standalone observations as Observations, never made-up DiagnosticReports (H-10)."""

import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.condition import Condition

from directory.actions import create_api_token
from directory.models import ApiToken
from fhirapi.models import ReceivedResource
from fhirapi.references import sender_system
from patients import models as record
from sharing.actions import break_glass
from tests import factories

from .conftest import bundle, condition_resource, import_json, patient_resource

pytestmark = pytest.mark.django_db

RESTRICTED = {"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"}


def body(response):
    """The JSON of a 200 response; a Bundle validated with R4B as a whole."""
    assert response.status_code == 200, response.content
    data = json.loads(response.content)
    if data["resourceType"] == "Bundle":
        Bundle.model_validate(data)
    return data


def resources(api, token, path):
    return [entry["resource"] for entry in body(api.get(path, token=token)).get("entry", [])]


@pytest.fixture
def ours(sender, patient):
    """The reader's patient, as the sender knows them (Patient/p1)."""
    import_json(patient_resource(nhs_number=patient.nhs_number, family=patient.family_name), sender)
    return patient


def practitioner():
    return {
        "resourceType": "Practitioner",
        "id": "dr1",
        "name": [{"family": "Rastall", "given": ["Paul"], "prefix": ["Dr"]}],
    }


def encounter():
    return {
        "resourceType": "Encounter",
        "id": "e1",
        "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
        "subject": {"reference": "Patient/p1"},
        "period": {"start": "2024-01-01T10:00:00Z"},
    }


@pytest.mark.hazard("H-04")
@pytest.mark.hazard("H-10")
def test_a_condition_comes_back_as_sent_with_our_id_meta_and_references(api, reader_token, sender, ours):
    import_json(practitioner(), sender)
    import_json(encounter(), sender)
    sent = condition_resource(
        identifier=[{"system": "https://trust.example/conditions", "value": "77"}],
        recorder={"reference": "Practitioner/dr1"},
        asserter={"reference": "Practitioner/unknown", "display": "Nurse Jones"},
        encounter={"reference": "Encounter/e1"},
        evidence=[{"detail": [{"reference": "urn:uuid:9a6d0c4a-0000-4000-8000-000000000000"}]}],
        bodySite=[{"text": "Left knee"}],
        extension=[{"url": "https://example.org/x", "valueString": "kept"}],
        meta={
            "profile": ["https://fhir.hl7.org.uk/StructureDefinition/UKCore-Condition"],
            "lastUpdated": "2024-01-02T00:00:00Z",
        },
    )
    import_json(sent, sender)
    condition = record.Condition.objects.get()
    [got] = resources(api, reader_token, f"/fhir/Condition?patient={ours.pk}")
    assert got["id"] == str(condition.pk)
    assert got["meta"]["versionId"] == "1" and got["meta"]["tag"][0]["code"] == sender.ods_code
    assert got["meta"]["profile"] == sent["meta"]["profile"]
    assert got["meta"]["source"] == f"{sender_system(sender.ods_code)}#Condition/c1"
    assert got["identifier"] == [
        *sent["identifier"],
        {"system": sender_system(sender.ods_code, "Condition"), "value": "c1"},
    ]
    assert got["bodySite"] == sent["bodySite"] and got["extension"] == sent["extension"]
    assert got["subject"] == {"reference": f"Patient/{ours.pk}"}
    appointment = record.Appointment.objects.get()  # an acute trust's inpatient encounter is held with appointments
    assert got["encounter"] == {"reference": f"Encounter/appointment-{appointment.pk}"}
    # Not held here: the sender's address goes, what it says stays (the name its Practitioner gave, its id).
    practitioners = sender_system(sender.ods_code, "Practitioner")
    assert got["recorder"] == {
        "type": "Practitioner",
        "identifier": {"system": practitioners, "value": "dr1"},
        "display": "Dr Paul Rastall",
    }
    assert got["asserter"] == {
        "display": "Nurse Jones",
        "type": "Practitioner",
        "identifier": {"system": practitioners, "value": "unknown"},
    }
    assert got["evidence"][0]["detail"] == [
        {"identifier": {"system": "urn:ietf:rfc:3986", "value": "urn:uuid:9a6d0c4a-0000-4000-8000-000000000000"}}
    ]
    # The rewritten reference is one a reader can follow.
    encountered = body(api.get(f"/fhir/{got['encounter']['reference']}", token=reader_token))
    assert encountered["resourceType"] == "Encounter" and encountered["period"]["start"] == "2024-01-01T10:00:00Z"


@pytest.mark.hazard("H-04")
def test_each_entry_is_read_as_the_type_it_arrived_as_once(api, reader_token, sender, ours, full_record):
    request = {
        "resourceType": "MedicationRequest",
        "id": "rx1",
        "status": "active",
        "intent": "order",
        "medicationCodeableConcept": {"text": "Ramipril 5mg capsules"},
        "subject": {"reference": "Patient/p1"},
        "authoredOn": "2024-03-01",
    }
    import_json(request, sender)
    import_json(encounter(), sender)
    statements = resources(api, reader_token, f"/fhir/MedicationStatement?patient={ours.pk}")
    requests = resources(api, reader_token, f"/fhir/MedicationRequest?patient={ours.pk}")
    assert [r["resourceType"] for r in statements] == ["MedicationStatement"]  # the demo-style row, built
    assert [(r["resourceType"], r["authoredOn"]) for r in requests] == [("MedicationRequest", "2024-03-01")]
    encounters = resources(api, reader_token, f"/fhir/Encounter?patient={ours.pk}")
    appointments = resources(api, reader_token, f"/fhir/Appointment?patient={ours.pk}")
    assert {r["id"].split("-")[0] for r in encounters} == {"appointment", str(full_record[record.CareEvent].pk)}
    assert [r["resourceType"] for r in appointments] == ["Appointment"]
    everything = body(api.get(f"/fhir/Patient/{ours.pk}/$everything?_count=200", token=reader_token))
    ids = [(e["resource"]["resourceType"], e["resource"]["id"]) for e in everything["entry"]]
    assert len(ids) == len(set(ids)) == everything["total"]
    assert ("MedicationRequest", str(record.Medication.objects.get(source_id="MedicationRequest/rx1").pk)) in ids
    # A read by id under another type is not that entry.
    medication = record.Medication.objects.get(source_id="MedicationRequest/rx1")
    assert api.get(f"/fhir/MedicationStatement/{medication.pk}", token=reader_token).status_code == 403
    assert api.get(f"/fhir/MedicationRequest/{medication.pk}", token=reader_token).status_code == 200


@pytest.mark.hazard("H-06")
def test_a_partners_patient_resource_never_is_the_patient_read(api, reader_token, sender, patient):
    """Its copy is kept (with its extensions, contacts, names), but a Patient read is the master view."""
    theirs = patient_resource(
        nhs_number=patient.nhs_number,
        family="Otherfamily",
        extension=[{"url": "https://example.org/x", "valueString": "partner's"}],
        contact=[{"name": {"family": "Contact"}}],
    )
    import_json(theirs, sender)
    assert ReceivedResource.objects.get(resource_type="Patient").json == theirs
    for read in (
        body(api.get(f"/fhir/Patient/{patient.pk}", token=reader_token)),
        body(api.get(f"/fhir/Patient/{patient.pk}/$everything", token=reader_token))["entry"][0]["resource"],
    ):
        assert read["id"] == str(patient.pk)
        assert "extension" not in read and "contact" not in read
        assert sender_system(sender.ods_code, "Patient") not in json.dumps(read)


@pytest.mark.hazard("H-11")
@pytest.mark.hazard("H-01")
def test_sensitive_and_withdrawn_stored_entries_follow_the_record_rules(api, reader_token, sender, ours):
    import_json(condition_resource("secret", meta={"security": [RESTRICTED]}), sender)
    withdrawn = condition_resource(
        "wrong",
        verificationStatus={
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status", "code": "entered-in-error"}
            ]
        },
    )
    import_json(withdrawn, sender)
    assert resources(api, reader_token, f"/fhir/Condition?patient={ours.pk}") == []
    for condition in record.Condition.objects.all():
        assert api.get(f"/fhir/Condition/{condition.pk}", token=reader_token).status_code == 403
    own = factories.ProfessionalFactory(organisation=sender).user
    break_glass(by=own, patient=ours, reason_code="emergency-treatment")
    _, secret = create_api_token(by=None, name="own", user=own)
    [got] = resources(api, secret, f"/fhir/Condition?patient={ours.pk}")
    assert got["meta"]["security"] == [RESTRICTED]  # as sent: one label, not two


@pytest.mark.hazard("H-11")
def test_a_sensitive_entry_the_sender_labelled_otherwise_is_labelled_restricted(api, sender, ours):
    import_json(condition_resource(meta={"security": [{**RESTRICTED, "code": "V"}]}), sender)
    own = factories.ProfessionalFactory(organisation=sender).user
    break_glass(by=own, patient=ours, reason_code="emergency-treatment")
    _, secret = create_api_token(by=None, name="own", user=own)
    [got] = resources(api, secret, f"/fhir/Condition?patient={ours.pk}")
    assert [label["code"] for label in got["meta"]["security"]] == ["V"]


def vital(resource_id="bp1", **extra):
    return {
        "resourceType": "Observation",
        "id": resource_id,
        "status": "final",
        "category": [
            {
                "coding": [
                    {"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}
                ]
            }
        ],
        "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9", "display": "Blood pressure panel"}]},
        "subject": {"reference": "Patient/p1"},
        "effectiveDateTime": "2024-05-01T09:00:00Z",
        "component": [
            {
                "code": {"coding": [{"system": "http://loinc.org", "code": "8480-6", "display": "Systolic"}]},
                "valueQuantity": {
                    "value": 120,
                    "unit": "mmHg",
                    "system": "http://unitsofmeasure.org",
                    "code": "mm[Hg]",
                },
            },
            {
                "code": {"coding": [{"system": "http://loinc.org", "code": "8462-4", "display": "Diastolic"}]},
                "valueQuantity": {"value": 80, "unit": "mmHg", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"},
            },
        ],
        **extra,
    }


@pytest.mark.hazard("H-10")
def test_a_standalone_observation_is_one_observation_never_a_report(api, reader_token, sender, ours):
    import_json(vital(), sender)
    assert resources(api, reader_token, f"/fhir/DiagnosticReport?patient={ours.pk}") == []
    [got] = resources(api, reader_token, f"/fhir/Observation?patient={ours.pk}")
    assert got["code"]["coding"][0]["code"] == "85354-9" and "derivedFrom" not in got
    assert [c["valueQuantity"]["value"] for c in got["component"]] == [120, 80]
    assert got["category"] == vital()["category"]


@pytest.mark.hazard("H-10")
def test_a_reports_observations_are_referenced_by_our_ids(api, reader_token, sender, ours):
    report = {
        "resourceType": "DiagnosticReport",
        "id": "r1",
        "status": "final",
        "code": {"text": "Obs set"},
        "subject": {"reference": "Patient/p1"},
        "result": [{"reference": "Observation/bp1"}, {"reference": "Observation/not-sent"}],
    }
    import_json(bundle("transaction", vital(), report), sender)
    [got] = resources(api, reader_token, f"/fhir/DiagnosticReport?patient={ours.pk}")
    [observation] = resources(api, reader_token, f"/fhir/Observation?patient={ours.pk}")
    assert got["result"][0] == {"reference": f"Observation/{observation['id']}"}
    assert got["result"][1]["identifier"]["value"] == "not-sent" and "reference" not in got["result"][1]


@pytest.mark.hazard("H-10")
def test_built_observations_are_one_reading_with_components(api, reader_token, patient, other_organisation):
    """Rows not from FHIR sharing a source_id (a reading's components) are built as one Observation."""
    result = factories.ResultFactory(patient=patient, source_organisation=other_organisation, kind="observation")
    for name, value in (("Systolic", 120), ("Diastolic", 80)):
        factories.ObservationFactory(
            result=result,
            name=name,
            value=value,
            unit="mmHg",
            unit_system="http://unitsofmeasure.org",
            unit_code="mm[Hg]",
            source_id="Observation/legacy",
            reading_name="Blood pressure",
            reading_code="85354-9",
            flag="",
            reference_low=None,
            reference_high=None,
        )
    single = factories.ObservationFactory(
        result=factories.ResultFactory(patient=patient, source_organisation=other_organisation)
    )
    got = resources(api, reader_token, f"/fhir/Observation?patient={patient.pk}")
    assert len(got) == 2
    reading = next(r for r in got if "component" in r)
    assert reading["code"] == {"text": "Blood pressure", "coding": [{"code": "85354-9"}]}
    quantities = [c["valueQuantity"] for c in reading["component"]]
    assert [(q["value"], q["system"], q["code"]) for q in quantities] == [
        (120, "http://unitsofmeasure.org", "mm[Hg]"),
        (80, "http://unitsofmeasure.org", "mm[Hg]"),
    ]
    plain = next(r for r in got if r["id"] == str(single.pk))
    assert plain["valueQuantity"]["value"] == 48 and "derivedFrom" not in plain


@pytest.mark.hazard("H-11")
def test_a_restricted_patients_support_network_is_not_given_out(api, reader_token, patient, organisation):
    factories.SupportPersonFactory(patient=patient, source_organisation=organisation, name="Bernard Testperson")
    assert len(resources(api, reader_token, f"/fhir/RelatedPerson?patient={patient.pk}")) == 1
    patient.restricted = True
    patient.save()
    assert resources(api, reader_token, f"/fhir/RelatedPerson?patient={patient.pk}") == []


def test_rows_without_a_kept_resource_are_built_as_before(api, reader_token, patient, other_organisation):
    """An entry imported before resources were kept (a FHIR-shaped source_id, nothing kept) is built, and read as
    its builder's type, once."""
    factories.MedicationFactory(
        patient=patient, source_organisation=other_organisation, source_id="MedicationRequest/old"
    )
    [got] = resources(api, reader_token, f"/fhir/MedicationStatement?patient={patient.pk}")
    assert got["resourceType"] == "MedicationStatement"
    assert resources(api, reader_token, f"/fhir/MedicationRequest?patient={patient.pk}") == []


def test_a_search_page_costs_the_same_queries_whatever_its_size(api, reader_token, sender, ours):
    import_json(practitioner(), sender)

    def count(n):
        record.Condition.objects.all().delete()
        for i in range(n):
            import_json(
                condition_resource(
                    f"c{i}", recorder={"reference": "Practitioner/dr1"}, encounter={"reference": "Encounter/x"}
                ),
                sender,
            )
        ApiToken.objects.update(last_used_at=timezone.now())  # "last used" is written at most once a minute
        with CaptureQueriesContext(connection) as queries:
            assert len(resources(api, reader_token, f"/fhir/Condition?patient={ours.pk}")) == n
        return len(queries)

    assert count(2) == count(12)


@pytest.mark.hazard("H-04")
def test_a_kept_resource_reads_as_xml_too(api, reader_token, sender, ours):
    import_json(condition_resource(bodySite=[{"text": "Left knee"}]), sender)
    condition = record.Condition.objects.get()
    response = api.get(f"/fhir/Condition/{condition.pk}?_format=xml", token=reader_token)
    assert response.status_code == 200 and response["Content-Type"].startswith("application/fhir+xml")
    read = Condition.model_validate_xml(response.content)
    assert read.id == str(condition.pk) and read.bodySite[0].text == "Left knee"
