"""STU3 refused clearly rather than misread (H-10): one OperationOutcome saying it is STU3, what gave it away and
what is accepted, before any R4 validation; nothing written, the refusal audited; no R4 input taken for STU3.

The fixtures are synthetic, shaped after GP Connect's structured record (STU3 CareConnect-GPC profiles), the
national pathology messages (ITK, CareConnect) and CareConnect resources: no real patient's data."""

import json

import pytest
from fhir.resources.R4B import get_fhir_model_class as r4b_model
from fhir.resources.STU3 import get_fhir_model_class as stu3_model

from audit.models import AuditEvent
from audit.names import Action
from fhirapi.parse import Unreadable, read
from fhirapi.versions import STU3_ONLY_ELEMENTS, STU3_ONLY_TYPES
from patients import models as record

from .conftest import EXAMPLES, FHIR_JSON, FHIR_XML

pytestmark = [pytest.mark.django_db, pytest.mark.hazard("H-10")]

NHS_NUMBER = {"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9990000018"}
GPC = "https://fhir.nhs.uk/STU3/StructureDefinition"
CARECONNECT = "https://fhir.hl7.org.uk/STU3/StructureDefinition"


def gp_connect_structured_record():
    """A GP Connect Access Record: Structured response, trimmed: every resource on an STU3 profile."""
    patient = {
        "resourceType": "Patient",
        "id": "4d59c916",
        "meta": {"profile": [f"{GPC}/CareConnect-GPC-Patient-1"]},
        "extension": [
            {
                "url": f"{GPC}/Extension-CareConnect-GPC-RegistrationDetails-1",
                "extension": [{"url": "registrationPeriod", "valuePeriod": {"start": "2020-02-26"}}],
            }
        ],
        "identifier": [NHS_NUMBER],
        "name": [{"use": "official", "family": "Synthetic", "given": ["Stu"]}],
        "birthDate": "1970-01-01",
    }
    medication = {
        "resourceType": "MedicationStatement",
        "id": "ms1",
        "meta": {"profile": [f"{GPC}/CareConnect-GPC-MedicationStatement-1"]},
        "status": "active",
        "medicationReference": {"reference": "Medication/m1"},
        "subject": {"reference": "Patient/4d59c916"},
        "taken": "unk",
    }
    allergy = {
        "resourceType": "AllergyIntolerance",
        "id": "a1",
        "meta": {"profile": [f"{GPC}/CareConnect-GPC-AllergyIntolerance-1"]},
        "clinicalStatus": "active",
        "verificationStatus": "unconfirmed",
        "assertedDate": "2019-05-01",
        "patient": {"reference": "Patient/4d59c916"},
        "code": {"text": "Penicillin"},
    }
    return {
        "resourceType": "Bundle",
        "meta": {"profile": [f"{GPC}/GPConnect-StructuredRecord-Bundle-1"]},
        "type": "collection",
        "entry": [{"resource": patient}, {"resource": medication}, {"resource": allergy}],
    }


def pathology_message():
    """A national pathology (ITK) message, trimmed: STU3's MessageHeader.event and a ProcedureRequest."""
    header = {
        "resourceType": "MessageHeader",
        "id": "mh1",
        "event": {"system": "https://fhir.nhs.uk/STU3/CodeSystem/ITK-MessageEvent-2", "code": "ITK007C"},
        "timestamp": "2024-01-01T10:00:00+00:00",
        "source": {"endpoint": "urn:nhs-uk:addressing:ods:X1"},
    }
    request = {
        "resourceType": "ProcedureRequest",
        "id": "pr1",
        "meta": {"profile": [f"{CARECONNECT}/CareConnect-ProcedureRequest-1"]},
        "status": "active",
        "intent": "order",
        "subject": {"reference": "Patient/p1"},
    }
    return {"resourceType": "Bundle", "type": "message", "entry": [{"resource": header}, {"resource": request}]}


def careconnect_resource(resource_type, **elements):
    return {"resourceType": resource_type, "id": "x1", "subject": {"reference": "Patient/p1"}, **elements}


STU3 = {
    "GP Connect structured record": (gp_connect_structured_record(), "Bundle.meta.profile", f"{GPC}/GPConnect"),
    "pathology message": (pathology_message(), "Bundle.entry[0].resource.event", "MessageHeader.event"),
    "MedicationStatement.taken": (
        careconnect_resource(
            "MedicationStatement", status="active", taken="y", medicationCodeableConcept={"text": "x"}
        ),
        "MedicationStatement.taken",
        "R4 has MedicationStatement.status",
    ),
    "AllergyIntolerance.assertedDate": (
        {"resourceType": "AllergyIntolerance", "patient": {"reference": "Patient/p1"}, "assertedDate": "2019-01-01"},
        "AllergyIntolerance.assertedDate",
        "R4 has AllergyIntolerance.recordedDate",
    ),
    "Observation.context": (
        careconnect_resource("Observation", status="final", code={"text": "BP"}, context={"reference": "Encounter/e1"}),
        "Observation.context",
        "R4 has Observation.encounter",
    ),
    "DocumentReference.indexed": (
        careconnect_resource("DocumentReference", status="current", indexed="2020-01-01T00:00:00Z", type={"text": "x"}),
        "DocumentReference.indexed",
        "DocumentReference.indexed: an STU3 element",
    ),
    "DocumentReference.created": (
        careconnect_resource("DocumentReference", status="current", created="2020-01-01", content=[]),
        "DocumentReference.created",
        "DocumentReference.created: an STU3 element",
    ),
    "Condition.clinicalStatus as a code": (
        careconnect_resource("Condition", clinicalStatus="active", code={"text": "Asthma"}),
        "Condition.clinicalStatus",
        "as a code: STU3's form",
    ),
    "a CareConnect profile": (
        {"resourceType": "Patient", "meta": {"profile": [f"{CARECONNECT}/CareConnect-Patient-1"]}},
        "Patient.meta.profile",
        "CareConnect-Patient-1: an STU3 profile",
    ),
    "a CareConnect extension": (
        {
            "resourceType": "Patient",
            "extension": [{"url": f"{CARECONNECT}/Extension-CareConnect-EthnicCategory-1", "valueString": "x"}],
        },
        "Patient.extension[0].url",
        "Extension-CareConnect-EthnicCategory-1: an STU3 one",
    ),
}


def refusal_of(response) -> dict:
    assert response.status_code == 400, response.content
    [issue] = json.loads(response.content)["issue"]
    return issue


def assert_clear_stu3_refusal(issue, expression, named):
    assert issue["code"] == "not-supported" and issue["severity"] == "error"
    assert issue["diagnostics"].startswith("This is FHIR STU3 (")
    assert "carerecord accepts FHIR R4 (UK Core) only" in issue["diagnostics"]
    assert named in issue["diagnostics"]
    if expression:
        assert issue["expression"] == [expression]


def nothing_written():
    return not (record.Patient.objects.exists() or record.Letter.objects.exists() or record.Allergy.objects.exists())


@pytest.mark.parametrize("name", list(STU3))
def test_stu3_input_is_refused_with_one_clear_outcome_naming_what_gave_it_away(api, sender_token, name):
    body, expression, named = STU3[name]
    path = "/fhir/" if body["resourceType"] == "Bundle" else f"/fhir/{body['resourceType']}"
    if body.get("type") == "message":
        path = "/fhir/$process-message"
    issue = refusal_of(api.post(path, body, token=sender_token))
    assert_clear_stu3_refusal(issue, expression, named)
    assert nothing_written()
    [audited] = AuditEvent.objects.filter(action=Action.FHIR_SUBMISSION)
    assert audited.detail["applied"] == "False" and "This is FHIR STU3" in audited.detail["refused"]


def test_a_bundle_names_its_first_signs_and_counts_the_rest(api, sender_token):
    issue = refusal_of(api.post("/fhir/", gp_connect_structured_record(), token=sender_token))
    diagnostics = issue["diagnostics"]
    assert "GPConnect-StructuredRecord-Bundle-1: an STU3 profile" in diagnostics
    assert "CareConnect-GPC-Patient-1: an STU3 profile" in diagnostics
    # Nine in all: four profiles, taken, assertedDate, two statuses as codes, the registration extension.
    assert "and 6 more signs" in diagnostics


def test_the_content_type_fhir_version_is_enough(api, sender_token):
    patient = {"resourceType": "Patient", "identifier": [NHS_NUMBER], "name": [{"family": "Synthetic"}]}
    response = api.post("/fhir/Patient", patient, token=sender_token, content_type=f"{FHIR_JSON}; fhirVersion=3.0")
    issue = refusal_of(response)
    assert_clear_stu3_refusal(issue, "", "the Content-Type says fhirVersion=3.0")
    assert nothing_written()
    accepted = api.post("/fhir/Patient", patient, token=sender_token, content_type=f"{FHIR_JSON}; fhirVersion=4.0")
    assert accepted.status_code != 400 or "STU3" not in accepted.content.decode()


def test_stu3_in_xml_is_refused_the_same_way(api, sender_token):
    body = (
        b'<MedicationStatement xmlns="http://hl7.org/fhir"><status value="active"/>'
        b'<medicationCodeableConcept><text value="x"/></medicationCodeableConcept>'
        b'<subject><reference value="Patient/p1"/></subject><taken value="y"/></MedicationStatement>'
    )
    issue = refusal_of(
        api.post("/fhir/MedicationStatement", body, token=sender_token, content_type=FHIR_XML, HTTP_ACCEPT=FHIR_JSON)
    )
    assert_clear_stu3_refusal(issue, "MedicationStatement.taken", "MedicationStatement.taken: an STU3 element")
    profiled = (
        b'<Bundle xmlns="http://hl7.org/fhir"><type value="collection"/><entry><resource>'
        b'<Condition><meta><profile value="https://fhir.hl7.org.uk/STU3/StructureDefinition/CareConnect-Condition-1"/>'
        b'</meta><clinicalStatus value="active"/></Condition></resource></entry></Bundle>'
    )
    issue = refusal_of(api.post("/fhir/", profiled, token=sender_token, content_type=FHIR_XML, HTTP_ACCEPT=FHIR_JSON))
    assert_clear_stu3_refusal(issue, "Bundle.entry[0].resource.clinicalStatus", "CareConnect-Condition-1")


def test_an_stu3_only_resource_type_is_named_with_its_r4_successor():
    with pytest.raises(Unreadable) as refused:
        read(json.dumps({"resourceType": "ReferralRequest", "status": "active"}).encode())
    [issue] = refused.value.issues
    assert "ReferralRequest: an STU3 resource type, R4 has ServiceRequest" in issue.diagnostics


@pytest.mark.parametrize("name", sorted(path.name for path in EXAMPLES.glob("*.xml")))
def test_no_uk_core_r4_example_is_taken_for_stu3(name):
    try:
        read((EXAMPLES / name).read_bytes(), FHIR_XML)
    except Unreadable as exc:
        assert not any("STU3" in issue.diagnostics for issue in exc.issues), exc.issues


def field_names(model) -> set[str]:
    return {field.alias or name for name, field in model.model_fields.items() if not name.endswith("__ext")} - {
        "fhir_comments"
    }


@pytest.mark.parametrize("resource_type", sorted(STU3_ONLY_ELEMENTS))
def test_the_stu3_only_elements_are_those_stu3_has_and_r4_does_not(resource_type):
    """The table in versions.py is the difference between fhir.resources' STU3 and R4B models."""
    stu3_only = field_names(stu3_model(resource_type)) - field_names(r4b_model(resource_type))
    assert set(STU3_ONLY_ELEMENTS[resource_type]) == stu3_only


def test_the_stu3_only_types_are_not_r4_types():
    from fhirapi.parse import resource_class

    for resource_type in STU3_ONLY_TYPES:
        assert stu3_model(resource_type).get_resource_type() == resource_type
        assert resource_class(resource_type) is None
        assert STU3_ONLY_TYPES[resource_type] == "" or resource_class(STU3_ONLY_TYPES[resource_type]) is not None
