"""Every type's parameters, each with a match and a non-match (entries built from the record and entries
received as FHIR), and every declared parameter of every type answered for a patient the reader may not see
exactly as for an unknown one."""

import datetime
import json

import pytest
from fhir.resources.R4B.bundle import Bundle

from audit.models import AccessEvent
from directory.actions import create_api_token
from fhirapi import read, search
from patients.models import Appointment, Medication, Result
from tests import factories
from tests.fhirapi.conftest import bundle, import_json, patient_resource

pytestmark = pytest.mark.django_db
SNOMED = "http://snomed.info/sct"
WHEN = datetime.datetime(2022, 2, 2, 12, tzinfo=datetime.UTC)
RECORDED = datetime.datetime(2021, 1, 1, 12, tzinfo=datetime.UTC)
SUBJECT = {"reference": "Patient/p1"}


@pytest.fixture
def record(patient, other_organisation):
    """One entry of each type built from the record (dated WHEN, recorded RECORDED), and the types only ever
    received as FHIR (MedicationRequest, EpisodeOfCare, Composition) sent by the sender."""
    held = {
        "patient": patient,
        "source_organisation": other_organisation,
        "effective_at": WHEN,
        "recorded_at": RECORDED,
    }
    factories.AllergyFactory(
        **held, clinical_status="inactive", verification_status="confirmed", code_system=SNOMED, code="91936005"
    )
    factories.AlertFactory(**held)
    factories.MedicationFactory(**held, code_system=SNOMED, code="S1", status=Medication.Status.STOPPED)
    factories.MedicationFactory(**held, code="D1", event=Medication.Event.DISPENSED, status=Medication.Status.COMPLETED)
    factories.MedicationFactory(
        **held, code="A1", event=Medication.Event.ADMINISTERED, status=Medication.Status.STOPPED
    )
    factories.AppointmentFactory(**held, status=Appointment.Status.DID_NOT_ATTEND)
    factories.AppointmentFactory(**held, kind=Appointment.Kind.REFERRAL, status=Appointment.Status.COMPLETED)
    factories.ResultFactory(**held, kind=Result.Kind.REPORT, status="preliminary", code_system=SNOMED, code="R1")
    factories.ProcedureFactory(**held)
    factories.ImmunisationFactory(**held)
    factories.LetterFactory(**held)
    factories.CarePlanFactory(**held)
    sent = [
        patient_resource(nhs_number=patient.nhs_number),
        {
            "resourceType": "MedicationRequest",
            "id": "rx1",
            "status": "on-hold",
            "intent": "order",
            "medicationCodeableConcept": {"coding": [{"system": SNOMED, "code": "Q1", "display": "Drug"}]},
            "subject": SUBJECT,
            "authoredOn": "2022-02-02",
        },
        {
            "resourceType": "EpisodeOfCare",
            "id": "ep1",
            "status": "waitlist",
            "patient": SUBJECT,
            "period": {"start": "2022-02-02"},
        },
        {
            "resourceType": "Composition",
            "id": "comp1",
            "status": "amended",
            "type": {"text": "Discharge summary"},
            "subject": SUBJECT,
            "date": "2022-02-02",
            "author": [{"display": "Dr Jones"}],
            "title": "Discharge summary",
            "identifier": {"system": "https://trust.example/docs", "value": "D-9"},
            "section": [
                {
                    "title": "Plan",
                    "text": {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">Home</div>'},
                }
            ],
        },
    ]
    report = import_json(bundle("transaction", *sent), other_organisation)
    assert report.applied, [issue.diagnostics for outcome in report.outcomes for issue in outcome.issues]
    return patient


# (type, a query that finds the one entry, one that finds none)
CASES = [
    ("AllergyIntolerance", "code=91936005", "code=1"),
    ("AllergyIntolerance", "clinical-status=inactive", "clinical-status=active"),
    ("AllergyIntolerance", "verification-status=confirmed", "verification-status=unconfirmed"),
    ("AllergyIntolerance", "date=2021-01-01", "date=2022-02-02"),
    ("Flag", "date=2022-02-02", "date=lt2022"),
    ("MedicationStatement", "code=S1", "code=D1"),
    ("MedicationStatement", "status=stopped", "status=active"),
    ("MedicationStatement", "effective=2022-02", "effective=2021"),
    ("MedicationDispense", "code=D1", "code=A1"),
    ("MedicationDispense", "status=completed", "status=unknown"),
    ("MedicationDispense", "whenhandedover=ge2022-02-02T12:00Z", "whenhandedover=gt2022-02-02T12:00Z"),
    ("MedicationAdministration", "code=A1", "code=D1"),
    ("MedicationAdministration", "status=unknown", "status=completed"),
    ("MedicationAdministration", "effective-time=2022", "effective-time=ne2022"),
    ("MedicationRequest", "status=on-hold", "status=active"),
    ("MedicationRequest", "authoredon=2022-02-02", "authoredon=2022-02-03"),
    ("MedicationRequest", f"code={SNOMED}%7CQ1", "code=S1"),
    ("Appointment", "status=noshow", "status=booked"),
    ("Appointment", "date=2022-02-02", "date=2022-02-01"),
    ("ServiceRequest", "status=completed", "status=active"),
    ("ServiceRequest", "authored=2021", "authored=2022"),
    ("ServiceRequest", "occurrence=2022", "occurrence=2021"),
    ("DiagnosticReport", "code=R1", "code=R2"),
    ("DiagnosticReport", "status=preliminary", "status=final"),
    ("DiagnosticReport", "date=2022-02-02", "date=2021-01-01"),
    ("DiagnosticReport", "issued=2021-01-01", "issued=2022-02-02"),
    ("Procedure", "code=52734007", "code=1"),
    ("Procedure", "status=completed", "status=in-progress"),
    ("Procedure", "date=le2022-02-02", "date=lt2022-02-02"),
    ("Immunization", "vaccine-code=836377006", "vaccine-code=1"),
    ("Immunization", "status=completed", "status=not-done"),
    ("Immunization", "date=2022-02-02", "date=sa2022-02-02"),
    ("Immunization", "lot-number=FL2291", "lot-number=FL"),
    ("DocumentReference", "status=current", "status=superseded"),
    ("DocumentReference", "date=2022-02-02", "date=2021-01-01"),  # a built letter's date is its letter's
    ("CarePlan", "status=active", "status=completed"),
    ("CarePlan", "date=2022-02-02", "date=eb2022-02-02"),
    ("EpisodeOfCare", "status=waitlist", "status=active"),
    ("EpisodeOfCare", "date=2022-02-02", "date=2022-02-03"),
    ("Composition", "status=amended", "status=final"),
    ("Composition", "date=2022-02-02", "date=2022-02-03"),
    ("Composition", "identifier=https://trust.example/docs%7CD-9", "identifier=D-8"),
    ("MedicationRequest", "identifier=rx1", "identifier=rx2"),  # the sender's id, as given back
    ("Procedure", "_lastUpdated=ge2000", "_lastUpdated=lt2000"),
]


@pytest.mark.hazard("H-16")
@pytest.mark.parametrize(("resource_type", "match", "miss"), CASES)
def test_a_match_and_a_non_match(api, reader_token, record, resource_type, match, miss):
    def total(query):
        response = api.get(f"/fhir/{resource_type}?patient={record.pk}&{query}", token=reader_token)
        assert response.status_code == 200, response.content
        return Bundle.model_validate(json.loads(response.content)).total

    assert total(match) == 1
    assert total(miss) == 0


@pytest.mark.hazard("H-16")
def test_every_declared_parameter_of_every_type_has_a_case():
    """Each type-specific parameter is exercised above (or in test_search.py / test_search_results.py)."""
    elsewhere = {("Condition", name) for name in search.params_of("Condition")}
    elsewhere |= {("Observation", name) for name in search.params_of("Observation")}
    elsewhere |= {("Encounter", "date"), ("Encounter", "status")}
    generic = {"patient", "subject", "_id", "_lastUpdated", "identifier"}
    cased = {(resource_type, match.split("=")[0]) for resource_type, match, _ in CASES}
    missing = [
        (resource_type, name)
        for resource_type in read.SEARCHABLE
        for name in search.params_of(resource_type)
        if name not in generic and (resource_type, name) not in cased | elsewhere
    ]
    assert missing == []


def _value(param) -> str:
    return {"token": "x", "date": "ge2000", "reference": ""}[param.type]


@pytest.mark.hazard("H-16")
@pytest.mark.parametrize("resource_type", sorted(read.SEARCHABLE))
def test_every_parameter_for_a_patient_the_reader_may_not_see_is_refused_as_unknown(
    api, patient, clinician_other_org, resource_type
):
    secret = create_api_token(by=None, name="other", user=clinician_other_org)[1]
    unknown = "00000000-0000-4000-8000-000000000000"
    for name, param in search.params_of(resource_type).items():
        if param.type == "reference":
            queries = [f"{name}={who}" for who in (patient.pk, unknown)]
        else:
            queries = [f"patient={who}&{name}={_value(param)}" for who in (patient.pk, unknown)]
        refused, not_known = (api.get(f"/fhir/{resource_type}?{query}", token=secret) for query in queries)
        assert refused.status_code == not_known.status_code == 403, (resource_type, name)
        assert refused.content == not_known.content
    assert set(AccessEvent.objects.values_list("outcome", flat=True)) == {"refused"}
