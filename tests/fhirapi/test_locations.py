"""Where a write is served (H-17): `Location` on 201 (and 200 for an update) = `[base]Type/<our id>/_history/<v>`
with its ETag; every transaction and batch response entry its `location`, `etag` and `lastModified`, found for
the whole submission in a few queries (fhirapi/locations.py); what is not read back here has no location."""

import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from fhir.resources.R4B.bundle import Bundle

from fhirapi.locations import locate
from patients import models as record

from .conftest import FHIR_XML, bundle, condition_resource, import_json, patient_resource

pytestmark = pytest.mark.django_db

BASE = "http://testserver/fhir/"


def heart_rate(resource_id, value=60, patient="Patient/p1"):
    return {
        "resourceType": "Observation",
        "id": resource_id,
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4", "display": "Heart rate"}]},
        "subject": {"reference": patient},
        "effectiveDateTime": "2024-01-01T09:00:00Z",
        "valueQuantity": {"value": value, "unit": "beats/minute"},
    }


def admission():
    return {
        "resourceType": "Encounter",
        "id": "e1",
        "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
        "subject": {"reference": "Patient/p1"},
        "period": {"start": "2024-01-01T10:00:00Z"},
    }


def practitioner():
    return {"resourceType": "Practitioner", "id": "dr1", "name": [{"family": "Rastall"}]}


@pytest.fixture
def ours(sender, patient):
    import_json(patient_resource(nhs_number=patient.nhs_number, family=patient.family_name), sender)
    return patient


@pytest.mark.hazard("H-17")
def test_a_create_is_located_at_its_first_version(api, sender_token, ours):
    response = api.post("/fhir/Condition", condition_resource(), token=sender_token)
    assert response.status_code == 201, response.content
    condition = record.Condition.objects.get(patient=ours)
    assert response["Location"] == f"{BASE}Condition/{condition.pk}/_history/1"
    assert response["ETag"] == 'W/"1"'
    assert response["Last-Modified"].endswith("GMT")


@pytest.mark.hazard("H-17")
def test_an_update_is_located_at_its_new_version_and_the_same_again_at_the_same(api, sender_token, ours):
    api.put("/fhir/Condition/c1", condition_resource(), token=sender_token)
    response = api.put("/fhir/Condition/c1", condition_resource(note=[{"text": "2"}]), token=sender_token)
    assert response.status_code == 200, response.content
    condition = record.Condition.objects.get(patient=ours)
    assert response["Location"] == f"{BASE}Condition/{condition.pk}/_history/2"
    again = api.put("/fhir/Condition/c1", condition_resource(note=[{"text": "2"}]), token=sender_token)
    assert (again.status_code, again["Location"], again["ETag"]) == (200, response["Location"], 'W/"2"')


@pytest.mark.hazard("H-17")
def test_the_location_is_where_a_reader_finds_that_version(api, sender_token, reader_token, ours):
    response = api.post("/fhir/Condition", condition_resource(), token=sender_token)
    read = api.get(response["Location"].removeprefix("http://testserver"), token=reader_token)
    assert read.status_code == 200, read.content
    assert json.loads(read.content)["code"]["coding"][0]["code"] == "44054006"


def test_a_patient_is_located_at_the_master_view_without_a_version(api, sender_token, patient):
    sent = patient_resource(nhs_number=patient.nhs_number, family=patient.family_name)
    response = api.post("/fhir/Patient", sent, token=sender_token)
    assert response.status_code in (200, 201), response.content
    assert response["Location"] == f"{BASE}Patient/{patient.pk}"
    assert "ETag" not in response


@pytest.mark.hazard("H-17")
def test_a_transaction_response_locates_every_entry(api, sender_token, sender, ours):
    import_json(condition_resource(), sender)
    body = bundle(
        "transaction",
        condition_resource(note=[{"text": "2"}]),
        heart_rate("hr1"),
        admission(),
        practitioner(),
        condition_resource("c2", meta={"lastUpdated": "2024-02-01T10:00:00Z"}),
    )
    response = api.post("/fhir/", body, token=sender_token)
    assert response.status_code == 200, response.content
    entries = [entry["response"] for entry in json.loads(response.content)["entry"]]
    Bundle.model_validate(json.loads(response.content))
    c1 = record.Condition.objects.get(source_id="Condition/c1")
    c2 = record.Condition.objects.get(source_id="Condition/c2")
    hr = record.Observation.objects.get(source_id="Observation/hr1")
    stay = record.Appointment.objects.get(source_id="Encounter/e1")
    assert [(e["status"], e.get("location"), e.get("etag")) for e in entries] == [
        ("200 OK", f"Condition/{c1.pk}/_history/2", 'W/"2"'),
        ("201 Created", f"Observation/{hr.pk}/_history/1", 'W/"1"'),
        ("201 Created", f"Encounter/appointment-{stay.pk}/_history/1", 'W/"1"'),
        ("201 Created", None, None),  # a name for display: not read back here
        ("201 Created", f"Condition/{c2.pk}/_history/1", 'W/"1"'),
    ]
    assert entries[4]["lastModified"] == "2024-02-01T10:00:00Z"
    assert all(e["lastModified"] for e in entries if "etag" in e)


@pytest.mark.hazard("H-17")
def test_a_batch_locates_what_it_applied_and_not_what_it_refused(api, sender_token, ours):
    refused = condition_resource("c2", subject={"reference": "Patient/nobody"})
    response = api.post("/fhir/", bundle("batch", condition_resource(), refused), token=sender_token)
    assert response.status_code == 200, response.content
    first, second = (entry["response"] for entry in json.loads(response.content)["entry"])
    assert first["location"].startswith("Condition/") and first["etag"] == 'W/"1"'
    assert second["status"].startswith("4") and "location" not in second and "etag" not in second


def test_a_transaction_response_in_xml(api, sender_token, ours):
    response = api.post("/fhir/?_format=xml", bundle("transaction", condition_resource()), token=sender_token)
    assert response.status_code == 200, response.content
    parsed = Bundle.model_validate_xml(response.content)
    assert parsed.entry[0].response.etag == 'W/"1"'
    assert parsed.entry[0].response.location.endswith("/_history/1")
    xml = api.post(
        "/fhir/",
        Bundle.model_validate(bundle("batch", heart_rate("hr2"))).model_dump_xml(),
        token=sender_token,
        content_type=FHIR_XML,
    )
    assert Bundle.model_validate_xml(xml.content).entry[0].response.location.startswith("Observation/")


def test_locations_take_a_few_queries_whatever_the_number_of_entries(sender, ours):
    resources = [patient_resource(f"p{n}", nhs_number=nhs, family="Many") for n, nhs in enumerate(NUMBERS, 2)]
    resources += [heart_rate(f"hr{n}", n, f"Patient/p{n}") for n in range(2, 2 + len(NUMBERS))]
    resources += [condition_resource(f"c{n}") for n in range(20)]
    report = import_json(bundle("transaction", *resources), sender)
    assert report.applied
    with CaptureQueriesContext(connection) as queries:
        located = locate(report)
    assert len(queries) <= 2  # observations, conditions (patients as ingest matched them, versions as it kept them)
    assert all(place is not None and (place.version or place.path.startswith("Patient/")) for place in located)


NUMBERS = ["9990000026", "9990000034", "9990000042", "9990000050", "9990000069"]


@pytest.mark.hazard("H-17")
def test_an_older_copy_than_the_one_held_is_located_at_the_version_held(api, sender_token, sender, ours):
    import_json(condition_resource(meta={"lastUpdated": "2024-03-01T10:00:00Z"}), sender)
    older = condition_resource(meta={"lastUpdated": "2024-01-01T10:00:00Z"}, note=[{"text": "older"}])
    response = api.post("/fhir/", bundle("transaction", older), token=sender_token)
    [entry] = json.loads(response.content)["entry"]
    condition = record.Condition.objects.get(patient=ours)
    located = (entry["response"]["location"], entry["response"]["etag"])
    assert located == (f"Condition/{condition.pk}/_history/1", 'W/"1"')
    assert entry["response"]["lastModified"] == "2024-03-01T10:00:00Z"
