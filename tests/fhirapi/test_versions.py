"""meta.versionId and meta.lastUpdated on read (H-17): the kept version served and its time (the source's
meta.lastUpdated of that version where given, else when carerecord received it), with ETag and Last-Modified;
meta.source naming the sending system on every entry; no versionId where carerecord keeps no versions."""

import datetime
import json

import pytest

from fhirapi.history import version_meta, versions_of
from fhirapi.models import ReceivedResource
from fhirapi.references import sender_system
from patients import models as record
from sharing.access import decide
from tests import factories

from .conftest import condition_resource, import_json, patient_resource

pytestmark = pytest.mark.django_db


def body(response, status=200):
    assert response.status_code == status, response.content
    return json.loads(response.content)


@pytest.fixture
def ours(sender, patient):
    import_json(patient_resource(nhs_number=patient.nhs_number, family=patient.family_name), sender)
    return patient


@pytest.mark.hazard("H-17")
def test_a_read_gives_the_version_and_the_sources_time(api, reader_token, sender, ours):
    import_json(condition_resource(meta={"lastUpdated": "2024-03-01T10:00:00+01:00"}), sender)
    import_json(condition_resource(meta={"lastUpdated": "2024-04-01T10:00:00Z"}, note=[{"text": "2"}]), sender)
    condition = record.Condition.objects.get(patient=ours)
    response = api.get(f"/fhir/Condition/{condition.pk}", token=reader_token)
    meta = body(response)["meta"]
    assert (meta["versionId"], meta["lastUpdated"]) == ("2", "2024-04-01T10:00:00Z")
    assert response["ETag"] == 'W/"2"'
    assert response["Last-Modified"] == "Mon, 01 Apr 2024 10:00:00 GMT"


@pytest.mark.hazard("H-17")
def test_without_the_sources_time_lastupdated_is_when_carerecord_received_it(api, reader_token, sender, ours):
    import_json(condition_resource(), sender)
    condition = record.Condition.objects.get(patient=ours)
    kept = ReceivedResource.objects.get(resource_type="Condition")
    meta = body(api.get(f"/fhir/Condition/{condition.pk}", token=reader_token))["meta"]
    assert meta["versionId"] == "1"
    assert datetime.datetime.fromisoformat(meta["lastUpdated"]) == kept.received_at


@pytest.mark.hazard("H-17")
def test_search_results_carry_each_entrys_version(api, reader_token, sender, ours):
    import_json(condition_resource("c1"), sender)
    import_json(condition_resource("c2", name="Asthma"), sender)
    import_json(condition_resource("c2", name="Asthma", note=[{"text": "again"}]), sender)
    entries = body(api.get(f"/fhir/Condition?patient={ours.pk}", token=reader_token))["entry"]
    versions = {e["resource"]["code"]["coding"][0]["display"]: e["resource"]["meta"]["versionId"] for e in entries}
    assert versions == {"Type 2 diabetes mellitus": "1", "Asthma": "2"}


@pytest.mark.hazard("H-17")
def test_a_built_entry_names_its_sender_and_has_no_version(api, reader_token, patient, other_organisation):
    condition = factories.ConditionFactory(patient=patient, source_organisation=other_organisation)
    response = api.get(f"/fhir/Condition/{condition.pk}", token=reader_token)
    meta = body(response)["meta"]
    assert meta["source"] == sender_system(other_organisation.ods_code)
    assert "versionId" not in meta
    assert "ETag" not in response and "Last-Modified" not in response


def test_a_kept_entry_names_its_sender_with_its_id(api, reader_token, sender, ours):
    import_json(condition_resource(), sender)
    condition = record.Condition.objects.get(patient=ours)
    meta = body(api.get(f"/fhir/Condition/{condition.pk}", token=reader_token))["meta"]
    assert meta["source"] == f"{sender_system(sender.ods_code)}#Condition/c1"


@pytest.mark.hazard("H-17")
def test_version_meta_prefers_the_sources_time():
    received = datetime.datetime(2024, 5, 2, tzinfo=datetime.UTC)
    sent = datetime.datetime(2024, 5, 1, tzinfo=datetime.UTC)
    with_time = ReceivedResource(version=3, received_at=received, source_updated_at=sent)
    assert version_meta(with_time) == {"versionId": "3", "lastUpdated": sent}
    without = ReceivedResource(version=1, received_at=received)
    assert version_meta(without) == {"versionId": "1", "lastUpdated": received}


@pytest.mark.hazard("H-17")
def test_versions_of_gives_this_patients_versions_newest_first(sender, ours, clinician):
    import_json(condition_resource(), sender)
    import_json(condition_resource(note=[{"text": "2"}]), sender)
    condition = record.Condition.objects.get(patient=ours)
    decision = decide(clinician, ours)
    assert [v.version for v in versions_of("Condition", condition, ours, decision)] == [2, 1]
    assert versions_of("MedicationRequest", condition, ours, decision) == []  # not received as that type
    other = factories.PatientFactory()
    assert versions_of("Condition", condition, other, decision) == []
    built = factories.ConditionFactory(patient=ours, source_organisation=sender)
    assert versions_of("Condition", built, ours, decision) == []
