"""Issue 13: contained resources (FHIR references.html#contained). A contained resource has no existence of its
own: a contained Patient names a patient the shared record holds, by NHS number, and never creates, changes or
re-points one (H-06); a contained Medication gives the drug's name and codings, a contained Practitioner or
Organization a name (H-04, H-10); a `#id` that names nothing is refused naming the element (H-05).
"""

import pytest

from directory.models import Organisation
from fhirapi.models import ReceivedResource
from fhirapi.systems import NHS_NUMBER, ODS_CODE, SNOMED
from patients import models as record
from tests import factories

from .conftest import bundle, condition_resource, import_json, patient_resource

pytestmark = pytest.mark.django_db

NHS = "9990000018"
OTHER_NHS = "9990000026"
DMD = "https://dmd.nhs.uk"


def contained_patient(nhs_number=NHS, resource_id="p1", family="Copyname", **extra):
    patient = patient_resource(resource_id, nhs_number=nhs_number, family=family, **extra)
    return patient


def with_contained(resource, *contained):
    return {**resource, "contained": list(contained)}


def statuses(report):
    return [outcome.status for outcome in report.outcomes]


@pytest.fixture
def gp_practice():
    return factories.OrganisationFactory(name="Riverside Practice", kind=Organisation.Kind.GP_PRACTICE)


@pytest.fixture
def known(gp_practice):
    import_json(patient_resource("gp-a", nhs_number=NHS, family="Rightperson"), gp_practice)
    import_json(patient_resource("gp-b", nhs_number=OTHER_NHS, family="Otherperson"), gp_practice)
    return record.Patient.objects.get(nhs_number=NHS)


# --- a contained Patient ---


@pytest.mark.hazard("H-06")
def test_a_contained_patient_names_the_known_patient_by_nhs_number(sender, known):
    condition = with_contained(condition_resource(patient="#p1"), contained_patient())
    [outcome] = import_json(condition, sender).outcomes
    assert outcome.status == "created", outcome.issues
    assert record.Condition.objects.get().patient == known


@pytest.mark.hazard("H-06")
def test_a_contained_patient_never_changes_who_the_patient_is(sender, known):
    """Its demographics are a copy inside the container: the master view, the sender's copies and links stay."""
    condition = with_contained(condition_resource(patient="#p1"), contained_patient(family="Copyname"))
    import_json(condition, sender)
    known.refresh_from_db()
    assert known.family_name == "Rightperson"
    assert not record.SourceDemographics.objects.filter(organisation=sender).exists()
    assert not record.SourcePatientId.objects.filter(organisation=sender).exists()
    assert not ReceivedResource.objects.filter(resource_type="Patient", organisation=sender).exists()


@pytest.mark.hazard("H-06")
def test_a_contained_patient_never_creates_a_patient(api, sender_token):
    condition = with_contained(condition_resource(patient="#p1"), contained_patient(nhs_number="9990000034"))
    response = api.post("/fhir/Condition", condition, token=sender_token)
    assert response.status_code == 422
    [issue] = response.json()["issue"]
    assert (issue["code"], issue["expression"]) == ("not-found", ["Condition.subject"])
    assert "never creates a patient" in issue["diagnostics"]
    assert not record.Patient.objects.exists() and not record.Condition.objects.exists()


@pytest.mark.hazard("H-06")
def test_a_contained_patient_id_never_re_points_the_senders_patient_of_that_id(sender, known):
    """`#p1` is local to its container: the sender's own Patient/p1 (another person) is neither used nor moved."""
    import_json(patient_resource("p1", nhs_number=OTHER_NHS), sender)
    condition = with_contained(condition_resource(patient="#p1"), contained_patient(nhs_number=NHS, resource_id="p1"))
    [outcome] = import_json(condition, sender).outcomes
    assert outcome.status == "created", outcome.issues
    assert record.Condition.objects.get().patient == known
    link = record.SourcePatientId.objects.get(organisation=sender, resource_id="Patient/p1")
    assert link.patient.nhs_number == OTHER_NHS


@pytest.mark.hazard("H-06")
def test_a_contained_patient_without_an_nhs_number_is_refused(sender, known):
    nameless = contained_patient()
    nameless["identifier"] = [{"system": "https://trust.example.nhs.uk/Id/mrn", "value": "H1"}]
    [outcome] = import_json(with_contained(condition_resource(patient="#p1"), nameless), sender).outcomes
    assert outcome.status == "rejected" and outcome.issues[0].code == "required"
    assert not record.Condition.objects.exists()


@pytest.mark.hazard("H-06")
def test_a_contained_patient_that_disagrees_with_the_references_identifier_is_refused(sender, known):
    condition = with_contained(condition_resource(patient="#p1"), contained_patient(nhs_number=NHS))
    condition["subject"]["identifier"] = {"system": NHS_NUMBER, "value": OTHER_NHS}
    [outcome] = import_json(condition, sender).outcomes
    assert outcome.status == "rejected" and outcome.issues[0].code == "business-rule"
    assert not record.Condition.objects.exists()


@pytest.mark.hazard("H-06")
def test_a_contained_resource_of_another_type_is_not_a_patient(sender, known):
    practitioner = {"resourceType": "Practitioner", "id": "p1", "name": [{"family": "Rastall"}]}
    [outcome] = import_json(with_contained(condition_resource(patient="#p1"), practitioner), sender).outcomes
    assert outcome.status == "rejected"
    assert outcome.issues[0].code == "invalid" and "not a Patient" in outcome.issues[0].diagnostics


# --- what a contained resource names ---


@pytest.mark.hazard("H-10")
def test_a_contained_medication_gives_the_drugs_name_and_every_coding(sender, known):
    medication = {
        "resourceType": "Medication",
        "id": "m1",
        "code": {
            "coding": [
                {"system": DMD, "code": "39720311000001101", "display": "Paracetamol 500mg tablets"},
                {"system": SNOMED, "code": "322236009", "display": "Paracetamol 500 mg oral tablet"},
            ]
        },
    }
    statement = {
        "resourceType": "MedicationStatement",
        "id": "ms1",
        "status": "active",
        "medicationReference": {"reference": "#m1"},
        "subject": {"reference": "#p1"},
        "effectiveDateTime": "2024-01-01",
    }
    [outcome] = import_json(with_contained(statement, medication, contained_patient()), sender).outcomes
    assert outcome.status == "created", outcome.issues
    medicine = record.Medication.objects.get()
    assert (medicine.patient, medicine.name) == (known, "Paracetamol 500mg tablets")
    assert [coding["code"] for coding in medicine.codings] == ["39720311000001101", "322236009"]


@pytest.mark.hazard("H-04")
def test_a_contained_medication_without_a_code_is_named_by_its_ingredients(sender, known):
    medication = {
        "resourceType": "Medication",
        "id": "m1",
        "ingredient": [
            {"itemCodeableConcept": {"text": "Codeine phosphate 8mg"}},
            {"itemCodeableConcept": {"text": "Paracetamol 500mg"}},
        ],
    }
    request = {
        "resourceType": "MedicationRequest",
        "id": "mr1",
        "status": "active",
        "intent": "order",
        "medicationReference": {"reference": "#m1"},
        "subject": {"reference": f"Patient?identifier={NHS_NUMBER}|{NHS}"},
        "authoredOn": "2024-01-01",
    }
    [outcome] = import_json(with_contained(request, medication), sender).outcomes
    assert outcome.status == "created", outcome.issues
    assert record.Medication.objects.get().name == "Codeine phosphate 8mg, Paracetamol 500mg"


@pytest.mark.hazard("H-04")
def test_a_contained_practitioner_gives_its_name(sender, known):
    episode = {
        "resourceType": "EpisodeOfCare",
        "id": "e1",
        "status": "active",
        "patient": {"identifier": {"system": NHS_NUMBER, "value": NHS}},
        "careManager": {"reference": "#pr1"},
        "period": {"start": "2024-01-02"},
    }
    practitioner = {"resourceType": "Practitioner", "id": "pr1", "name": [{"family": "Rastall", "prefix": ["Dr"]}]}
    [outcome] = import_json(with_contained(episode, practitioner), sender).outcomes
    assert outcome.status == "created", outcome.issues
    assert record.CareEvent.objects.get().practitioner == "Dr Rastall"


@pytest.mark.hazard("H-06")
def test_a_contained_organisation_names_the_registered_practice(sender, gp_practice):
    organisation = {
        "resourceType": "Organization",
        "id": "org1",
        "identifier": [{"system": ODS_CODE, "value": gp_practice.ods_code}],
        "name": "Riverside Practice",
    }
    patient = with_contained(patient_resource(generalPractitioner=[{"reference": "#org1"}]), organisation)
    [outcome] = import_json(patient, sender).outcomes
    assert outcome.status == "created", outcome.issues
    assert record.SourceDemographics.objects.get(organisation=sender).registered_gp == gp_practice


# --- a #id that names nothing ---


@pytest.mark.hazard("H-05")
def test_a_local_reference_naming_no_contained_resource_is_refused_naming_the_element(api, sender_token, known):
    condition = condition_resource(patient=f"Patient?identifier={NHS_NUMBER}|{NHS}", asserter={"reference": "#nobody"})
    response = api.post("/fhir/", bundle("batch", condition), token=sender_token)
    [answer] = response.json()["entry"]
    assert answer["response"]["status"] == "422 Unprocessable Entity"
    [issue] = answer["response"]["outcome"]["issue"]
    assert (issue["code"], issue["expression"]) == ("not-found", ["Bundle.entry[0].resource.asserter"])
    assert "#nobody" in issue["diagnostics"]
    assert not record.Condition.objects.exists()


@pytest.mark.hazard("H-05")
def test_a_contained_resource_is_kept_as_sent(sender, known):
    condition = with_contained(condition_resource(patient="#p1"), contained_patient())
    assert statuses(import_json(condition, sender)) == ["created"]
    kept = ReceivedResource.objects.get(resource_type="Condition")
    assert kept.json["contained"][0]["identifier"][0]["value"] == NHS
    assert kept.json["subject"] == {"reference": "#p1"}


@pytest.mark.hazard("H-06")
def test_an_appointment_finds_its_patient_and_clinician_however_they_are_referenced(sender, known):
    """A participant named by a contained Patient, a clinician by a conditional reference: each is what it points
    at, so the patient is found and the clinician named."""
    import_json(
        {
            "resourceType": "Practitioner",
            "id": "pr1",
            "identifier": [{"system": "https://fhir.nhs.uk/Id/sds-user-id", "value": "555123"}],
            "name": [{"family": "Rastall", "prefix": ["Dr"]}],
        },
        sender,
    )
    appointment = {
        "resourceType": "Appointment",
        "id": "a1",
        "status": "booked",
        "start": "2025-03-01T09:00:00Z",
        "end": "2025-03-01T09:15:00Z",
        "participant": [
            {"actor": {"reference": "#p1"}, "status": "accepted"},
            {
                "actor": {"reference": "Practitioner?identifier=https://fhir.nhs.uk/Id/sds-user-id|555123"},
                "status": "accepted",
            },
        ],
    }
    [outcome] = import_json(with_contained(appointment, contained_patient()), sender).outcomes
    assert outcome.status == "created", outcome.issues
    booked = record.Appointment.objects.get()
    assert (booked.patient, booked.clinician) == (known, "Dr Rastall")


@pytest.mark.hazard("H-05")
def test_a_contained_resource_the_record_cannot_read_is_said_not_silently_dropped(sender, known):
    """A report whose value is contained (`result: #o1`): the report is imported, and the answer says the
    contained Observation is not part of the record on its own."""
    observation = {
        "resourceType": "Observation",
        "id": "o1",
        "status": "final",
        "code": {"text": "Haemoglobin"},
        "valueQuantity": {"value": 130, "unit": "g/L"},
    }
    report = {
        "resourceType": "DiagnosticReport",
        "id": "r1",
        "status": "final",
        "code": {"text": "Full blood count"},
        "subject": {"reference": f"Patient?identifier={NHS_NUMBER}|{NHS}"},
        "effectiveDateTime": "2025-01-01",
        "result": [{"reference": "#o1"}],
    }
    sent = bundle("batch", with_contained(report, observation))
    [outcome] = import_json(sent, sender).outcomes
    assert outcome.status == "created", outcome.issues
    [warning] = outcome.issues
    assert (warning.severity, warning.code) == ("warning", "not-supported")
    assert warning.expression == "Bundle.entry[0].resource.contained"
    assert "Observation #o1" in warning.diagnostics
