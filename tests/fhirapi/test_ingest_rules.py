"""The import rules: idempotent, newer versions win, entered-in-error hides, transactions are atomic,
batches report per entry, nothing unmappable is dropped silently."""

import copy
from datetime import UTC, datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audit.models import AuditEvent
from audit.names import Action
from directory.actions import add_team_member
from directory.models import Organisation
from fhirapi.parse import read
from fhirapi.systems import ODS_CODE
from patients import models as record
from patients import nhs_numbers as numbers
from patients.categories import Category
from sharing.access import decide
from sharing.models import Involvement
from sharing.record import entries
from tests import factories

from .conftest import bundle, condition_resource, import_bytes, import_json, patient_resource

pytestmark = pytest.mark.django_db


def statuses(report):
    return [outcome.status for outcome in report.outcomes]


def lab_bundle(kind="batch", value=48):
    observation = {
        "resourceType": "Observation",
        "id": "hba1c-1",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "4548-4", "display": "Haemoglobin A1c"}]},
        "subject": {"reference": "urn:uuid:0b0c4b5e-0000-4000-8000-000000000001"},
        "effectiveDateTime": "2024-01-02T09:00:00Z",
        "valueQuantity": {"value": value, "unit": "mmol/mol"},
        "referenceRange": [{"low": {"value": 20}, "high": {"value": 41}}],
        "interpretation": [{"coding": [{"code": "H"}]}],
    }
    return bundle(
        kind,
        patient_resource(),
        observation,
        full_urls=["urn:uuid:0b0c4b5e-0000-4000-8000-000000000001", None],
    )


def test_a_bundle_resolves_urn_uuid_references_and_stores_a_standalone_result(sender):
    report = import_json(lab_bundle(), sender)
    assert statuses(report) == ["created", "created"]
    value = record.Observation.objects.get()
    assert (value.name, value.value, value.unit, value.flag, value.reference_range) == (
        "Haemoglobin A1c",
        48,
        "mmol/mol",
        "H",
        "20 to 41 mmol/mol",
    )
    assert value.result.source_id == "Observation/hba1c-1" and value.patient.nhs_number == "9990000018"


@pytest.mark.hazard("H-14")
def test_importing_the_same_content_twice_changes_nothing(sender):
    import_json(lab_bundle(), sender)
    import_json(condition_resource(), sender)
    before = {
        m: list(m.objects.values()) for m in (record.Patient, record.Result, record.Observation, record.Condition)
    }
    assert statuses(import_json(lab_bundle(), sender)) == ["unchanged", "unchanged"]
    assert statuses(import_json(condition_resource(), sender)) == ["unchanged"]
    assert before == {m: list(m.objects.values()) for m in before}


@pytest.mark.hazard("H-04")
def test_changed_content_updates_in_place(sender):
    import_json(lab_bundle(value=48), sender)
    assert statuses(import_json(lab_bundle(value=52), sender)) == ["unchanged", "updated"]
    assert list(record.Observation.objects.values_list("value", flat=True)) == [52]
    assert record.Result.objects.count() == 1


@pytest.mark.hazard("H-08")
def test_a_newer_version_updates_and_an_older_one_is_skipped(sender):
    import_json(patient_resource(), sender)
    newer = condition_resource(meta={"versionId": "2", "lastUpdated": "2024-02-01T00:00:00Z"}, name="Asthma")
    older = condition_resource(meta={"versionId": "1", "lastUpdated": "2024-01-01T00:00:00Z"}, name="Old name")
    assert statuses(import_json(newer, sender)) == ["created"]
    report = import_json(older, sender)
    assert statuses(report) == ["unchanged"] and "Older than the copy" in report.outcomes[0].issues[0].diagnostics
    assert record.Condition.objects.get().name == "Asthma"
    newest = condition_resource(meta={"versionId": "3", "lastUpdated": "2024-03-01T00:00:00Z"}, name="Asthma (mild)")
    assert statuses(import_json(newest, sender)) == ["updated"]
    assert record.Condition.objects.get().name == "Asthma (mild)"


def test_a_patient_update_keeps_what_the_resource_leaves_out(sender):
    import_json(patient_resource(telecom=[{"system": "phone", "value": "020 7946 0000"}]), sender)
    moved = patient_resource(address=[{"line": ["1 New Road"], "city": "London", "postalCode": "N1 1AA"}])
    assert statuses(import_json(moved, sender)) == ["updated"]
    patient = record.Patient.objects.get()
    assert (patient.postcode, patient.phone) == ("N1 1AA", "020 7946 0000")


@pytest.mark.hazard("H-04")
def test_entered_in_error_keeps_the_row_and_hides_it_from_every_view(sender, patient, clinician):
    mine = patient_resource(nhs_number=patient.nhs_number, family=patient.family_name)
    import_json(mine, sender)
    import_json(condition_resource(), sender)
    decision = decide(clinician, patient)
    assert entries(patient, decision, Category.CONDITIONS).count() == 1
    withdrawn = condition_resource(
        verificationStatus={
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status", "code": "entered-in-error"}
            ]
        }
    )
    assert statuses(import_json(withdrawn, sender)) == ["updated"]
    assert record.Condition.objects.get().entered_in_error is True
    assert entries(patient, decision, Category.CONDITIONS).count() == 0


@pytest.mark.hazard("H-05")
def test_a_transaction_with_one_bad_entry_changes_nothing(sender):
    good = lab_bundle("transaction")
    bad = copy.deepcopy(good)
    bad["entry"].append(
        {"resource": condition_resource(patient="Patient/nobody"), "request": {"method": "POST", "url": "x"}}
    )
    report = import_json(bad, sender)
    assert report.applied is False and report.errors[0].code == "not-found"
    assert report.errors[0].expression == "Bundle.entry[2].resource.subject"
    assert not record.Patient.objects.exists() and not record.Observation.objects.exists()
    assert import_json(good, sender).applied is True
    assert record.Observation.objects.count() == 1


@pytest.mark.hazard("H-05")
def test_a_transaction_with_an_invalid_entry_changes_nothing(sender):
    broken = lab_bundle("transaction")
    broken["entry"][1]["resource"]["valueQuantity"]["value"] = "forty-eight"
    report = import_json(broken, sender)
    assert report.applied is False
    assert report.errors[0].expression == "Bundle.entry[1].resource.valueQuantity.value"
    assert not record.Patient.objects.exists()


@pytest.mark.hazard("H-05")
def test_a_batch_keeps_the_good_entries_and_reports_the_bad(sender):
    batch = lab_bundle("batch")
    batch["entry"].append(
        {"resource": condition_resource(patient="Patient/nobody"), "request": {"method": "POST", "url": "x"}}
    )
    batch["entry"].append(
        {
            "resource": {"resourceType": "Basic", "id": "b1", "code": {"text": "x"}},
            "request": {"method": "POST", "url": "x"},
        }
    )
    report = import_json(batch, sender)
    assert statuses(report) == ["created", "created", "rejected", "rejected"]
    assert report.outcomes[2].issues[0].code == "not-found"
    # A type the record has no place for is reported, not silently dropped.
    assert (report.outcomes[3].issues[0].severity, report.outcomes[3].issues[0].code) == ("warning", "not-supported")
    assert record.Observation.objects.count() == 1


@pytest.mark.hazard("H-05")
def test_an_unsupported_type_does_not_fail_a_transaction(sender):
    transaction = lab_bundle("transaction")
    transaction["entry"].append(
        {
            "resource": {"resourceType": "Basic", "id": "b1", "code": {"text": "x"}},
            "request": {"method": "POST", "url": "x"},
        }
    )
    report = import_json(transaction, sender)
    assert report.applied is True and statuses(report)[-1] == "rejected"


@pytest.mark.hazard("H-14")
def test_a_report_adopts_observations_sent_before_it(sender):
    import_json(lab_bundle(), sender)
    report = {
        "resourceType": "DiagnosticReport",
        "id": "r1",
        "status": "final",
        "code": {"text": "Diabetes review bloods"},
        "subject": {"reference": "Patient/p1"},
        "result": [{"reference": "Observation/hba1c-1"}],
        "conclusion": "Above target.",
    }
    assert statuses(import_json(report, sender)) == ["created"]
    result = record.Result.objects.get()  # the observation's own Result is gone
    assert (result.name, result.conclusion) == ("Diabetes review bloods", "Above target.")
    assert result.observations.get().name == "Haemoglobin A1c"
    # Resent on its own, the observation stays with its report.
    assert statuses(import_json(lab_bundle(), sender)) == ["unchanged", "unchanged"]
    assert record.Result.objects.get().observations.count() == 1


@pytest.mark.hazard("H-11")
def test_sensitive_flag_comes_from_meta_security(sender):
    import_json(patient_resource(), sender)
    restricted = {"security": [{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"}]}
    import_json(condition_resource(meta=restricted), sender)
    assert record.Condition.objects.get().sensitive is True


def test_a_care_team_starts_an_involvement_that_grants_the_team_access(sender):
    import_json(patient_resource(), sender)
    import_json(condition_resource(), sender)  # a sender asserts care only for patients it sends data for
    team = {
        "resourceType": "CareTeam",
        "id": "ct1",
        "status": "active",
        "name": "Community diabetes team",
        "subject": {"reference": "Patient/p1"},
        "period": {"start": "2024-01-01T00:00:00Z"},
    }
    assert statuses(import_json(team, sender)) == ["created"]
    involvement = record.Patient.objects.get().involvements.get()
    assert (involvement.care_team.organisation, involvement.care_team.name) == (sender, "Community diabetes team")
    assert involvement.source_id == "CareTeam/ct1" and involvement.is_current
    member = factories.ProfessionalFactory(organisation=sender)  # members are added by IG, not by imports
    add_team_member(by=None, team=involvement.care_team, professional=member)
    assert decide(member.user, involvement.patient).allowed
    assert statuses(import_json(team, sender)) == ["unchanged"]
    assert statuses(import_json({**team, "status": "inactive"}, sender)) == ["updated"]
    assert not decide(member.user, involvement.patient).allowed


def care_team_resource(**changes):
    return {
        "resourceType": "CareTeam",
        "id": "ct1",
        "status": "active",
        "name": "Community diabetes team",
        "subject": {"reference": "Patient/p1"},
        "period": {"start": "2024-01-01T00:00:00Z"},
        **changes,
    }


def test_a_care_team_sent_again_changes_its_involvement_through_the_actions(sender):
    """A new start, an end, then active again: one audit row each (as sharing.actions writes them), and the team's
    access follows each change at once."""
    import_json(patient_resource(), sender)
    import_json(condition_resource(), sender)  # a sender asserts care only for patients it sends data for
    import_json(care_team_resource(), sender)
    involvement = Involvement.objects.get()
    patient = involvement.patient
    member = factories.ProfessionalFactory(organisation=sender)
    add_team_member(by=None, team=involvement.care_team, professional=member)
    later = {"start": "2024-02-01T00:00:00Z"}

    assert statuses(import_json(care_team_resource(period=later), sender)) == ["updated"]
    involvement.refresh_from_db()
    assert involvement.started_at == datetime(2024, 2, 1, tzinfo=UTC) and involvement.ended_at is None
    assert decide(member.user, patient).allowed
    assert statuses(import_json(care_team_resource(period=later, status="inactive"), sender)) == ["updated"]
    assert not decide(member.user, patient).allowed
    assert statuses(import_json(care_team_resource(period=later), sender)) == ["updated"]
    involvement.refresh_from_db()
    assert involvement.ended_at is None
    assert decide(member.user, patient).allowed
    assert statuses(import_json(care_team_resource(period=later), sender)) == ["unchanged"]

    events = list(AuditEvent.objects.filter(target_type="Involvement", target_id=str(involvement.pk)).order_by("pk"))
    assert [event.action for event in events] == [
        Action.INVOLVEMENT_STARTED,
        Action.INVOLVEMENT_UPDATED,
        Action.INVOLVEMENT_ENDED,
        Action.INVOLVEMENT_UPDATED,
    ]
    assert all(event.actor_id is None and event.patient_id == patient.pk for event in events)
    assert list(events[1].detail) == ["started_at"] and events[1].detail["started_at"].startswith("2024-02-01 00:00")
    assert events[3].detail == {"ended_at": ""}  # the end date taken away


def test_an_unknown_organization_is_added_through_the_directory_action(sender):
    organization = {
        "resourceType": "Organization",
        "id": "org1",
        "name": "Riverside Hospice",
        "identifier": [{"system": ODS_CODE, "value": "RZZ9X"}],
    }
    assert statuses(import_json(organization, sender)) == ["created"]
    added = Organisation.objects.get(ods_code="RZZ9X")
    assert added.kind == Organisation.Kind.HOSPICE and not added.sharing_agreements.exists()
    event = AuditEvent.objects.get(target_type="Organisation", target_id=str(added.pk))
    assert (event.action, event.actor_id, event.patient_id) == (Action.ORGANISATION_CHANGED, None, None)
    assert event.detail == {"changed": "ods_code,name,kind,region,address", "ods_code": "RZZ9X", "active": "True"}
    assert statuses(import_json({**organization, "name": "Renamed Hospice"}, sender)) == ["updated"]
    assert Organisation.objects.get(ods_code="RZZ9X").name == "Riverside Hospice"  # known: left as IG keeps it
    assert AuditEvent.objects.filter(target_type="Organisation").count() == 1


@pytest.mark.hazard("H-10")
def test_xml_and_json_read_the_same(sender):
    xml = b"""<Patient xmlns="http://hl7.org/fhir"><id value="p1"/>
      <identifier><system value="https://fhir.nhs.uk/Id/nhs-number"/><value value="9990000018"/></identifier>
      <name><use value="official"/><family value="Testperson"/><given value="Ada"/></name>
      <gender value="female"/><birthDate value="1970-01-01"/></Patient>"""
    assert statuses(import_bytes(xml, sender, "application/fhir+xml")) == ["created"]
    assert statuses(import_json(patient_resource(), sender)) == ["unchanged"]


def test_invalid_xml_names_the_element(sender):
    xml = b"""<Observation xmlns="http://hl7.org/fhir"><status value="final"/><code><text value="x"/></code>
      <valueQuantity><value value="high"/></valueQuantity></Observation>"""
    [outcome] = import_bytes(xml, sender).outcomes
    assert outcome.status == "rejected"
    assert outcome.issues[0].expression == "Observation.descendants().ofType(Quantity).value"
    unknown = read(b'<Patient xmlns="http://hl7.org/fhir"><colour value="red"/></Patient>')
    assert unknown.entries[0].issues[0].diagnostics == "Unknown element 'colour' in Patient"


def test_the_number_of_queries_does_not_grow_with_the_bundle(sender):
    """Bulk reads and writes: a bundle of 40 patients with observations costs as many queries as one of 4."""
    nhs_numbers = numbers.test_range_numbers(start=1000)

    def workload(patients: int):
        resources, urls = [], []
        for _ in range(patients):
            nhs_number = next(nhs_numbers)
            url = f"urn:uuid:00000000-0000-4000-8000-00{nhs_number}"
            observation = {**lab_bundle()["entry"][1]["resource"], "id": f"o{nhs_number}"}
            resources += [patient_resource(f"p{nhs_number}", nhs_number=nhs_number), observation]
            resources[-1]["subject"] = {"reference": url}
            urls += [url, None]
        return bundle("transaction", *resources, full_urls=urls)

    import_json(workload(1), sender)  # the sender's "last received" is written now, not again within the minute
    counts = []
    for patients in (4, 40):
        with CaptureQueriesContext(connection) as queries:
            report = import_json(workload(patients), sender)
        assert report.applied and not report.errors
        counts.append(len(queries))
    assert counts[0] == counts[1]


def allergy_resource(resource_id, substance, status=None):
    resource = {
        "resourceType": "AllergyIntolerance",
        "id": resource_id,
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "91936005", "display": substance}]},
        "patient": {"reference": "Patient/p1"},
        "recordedDate": "2021-03-04",
    }
    if status:
        system = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"
        resource["clinicalStatus"] = {"coding": [{"system": system, "code": status}]}
    return resource


@pytest.mark.hazard("H-07")
@pytest.mark.hazard("H-10")
def test_an_allergy_keeps_its_clinical_status_and_a_resolved_one_says_so(sender, patient, clinician, client):
    from django.urls import reverse

    from fhirapi.mapping.allergies import allergy

    import_json(patient_resource(nhs_number=patient.nhs_number, family=patient.family_name), sender)
    import_json(allergy_resource("a1", "Penicillin", "resolved"), sender)
    import_json(allergy_resource("a2", "Peanuts", "active"), sender)
    import_json(allergy_resource("a3", "Latex"), sender)
    status = {a.substance: a.clinical_status for a in record.Allergy.objects.all()}
    assert status == {"Penicillin": "resolved", "Peanuts": "active", "Latex": ""}
    client.force_login(clinician)
    page = client.get(reverse("record-allergies", args=[patient.pk])).content.decode()
    assert page.count(">Resolved</strong>") == 1 and "Peanuts" in page and "Latex" in page  # no status: current
    assert ">Active</strong>" not in page
    out = {a.substance: allergy(a).get("clinicalStatus") for a in record.Allergy.objects.all()}
    assert out["Penicillin"]["coding"][0]["code"] == "resolved" and out["Latex"] is None
