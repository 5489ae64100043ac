"""The CapabilityStatement says what is implemented, no more and no less (fhirapi/capability.py, ADR 0008).

Every search parameter, include, revinclude, interaction and operation it declares is used in a live request
here and answered (never a 400 "unknown parameter" or a 404 "not supported"); every name any type's registry
has, and FHIR's common ones, is accepted by a type's search if and only if the statement declares it for that
type. So a parameter implemented and not declared, or declared and not implemented, fails a test.
"""

import base64
import json
import re

import pytest
from fhir.resources.R4B.capabilitystatement import CapabilityStatement

from fhirapi import search
from fhirapi.capability import BUILT_ONLY, STORED
from fhirapi.mapping import DIRECTORY_TYPES
from fhirapi.read import SEARCHABLE
from patients.models import Patient
from tests import factories

from .conftest import FHIR_XML, RICHARD_SMITH, example_resource, patient_resource

pytestmark = [pytest.mark.django_db, pytest.mark.hazard("H-16")]

# Accepted everywhere, declared nowhere: FHIR's general parameters, which change no result.
GENERAL = {"_format", "_pretty"}
# FHIR's common search parameters and a few of its per-type ones carerecord does not implement, besides every
# name any type's registry has: each is tried on every type.
FHIR_NAMES = {
    "_text", "_content", "_has", "_list", "_profile", "_security", "_tag", "_query", "_filter", "_type",
    "_elements", "_contained", "_containedType", "_total", "_score", "_since", "name", "encounter", "performer",
    "asserter", "severity", "abatement-date", "body-site", "based-on", "requester", "intent", "medication",
    "author", "type", "class", "location", "participant", "value-quantity", "evidence", "criticality",
}  # fmt: skip
SENDER_ID = "UKCore-Patient-RichardSmith-Example"
# The first example of each type with a subject, sent alone (POST [base]/<Type>) for the interaction tests.
EXAMPLES = {
    "AllergyIntolerance": "Amoxicillin",
    "Appointment": "OrthopaedicSurgery",
    "CarePlan": "WellnessPlan",
    "CareTeam": "WeightManagementTeam",
    "Composition": "Discharge",
    "Condition": "BleedingFromEar",
    "Consent": "ForInformationAccess",
    "DiagnosticReport": "CTChestScan",
    "DocumentReference": "CarePlanReportPDF",
    "Encounter": "InpatientEncounter",
    "EpisodeOfCare": "SmokingCessationTherapy",
    "Flag": "FoodAllergy",
    "Immunization": "InfluenzaVaccine",
    "MedicationAdministration": "CiprofloxacinIV",
    "MedicationDispense": "Amoxicillin",
    "MedicationRequest": "Amoxicillin",
    "MedicationStatement": "Amoxicillin",
    "Observation": "24HourBloodPressure",
    "Procedure": "ExaminationOfSkin",
    "RelatedPerson": "JoySmith",
    "ServiceRequest": "CTChestScan",
}


def body(response) -> dict:
    return json.loads(response.content)


@pytest.fixture
def statement(client) -> dict:
    return body(client.get("/fhir/metadata"))


def declared(statement: dict) -> dict[str, dict]:
    return {resource["type"]: resource for resource in statement["rest"][0]["resource"]}


def names(resource: dict, element: str = "searchParam") -> list[str]:
    return [item["name"] for item in resource.get(element, [])]


def codes(resource: dict) -> list[str]:
    return [item["code"] for item in resource.get("interaction", [])]


# The statement itself


def test_it_validates_as_r4b_and_reads_the_same_as_xml(client, statement):
    CapabilityStatement.model_validate(statement)
    response = client.get("/fhir/metadata?_format=xml")
    assert response.status_code == 200 and response["Content-Type"].startswith(FHIR_XML)
    as_xml = json.loads(CapabilityStatement.model_validate_xml(response.content).model_dump_json(exclude_none=True))
    assert {**as_xml, "date": None} == {**statement, "date": None}


def test_it_declares_the_readable_and_stored_types_and_no_names_only_type(statement):
    resources = declared(statement)
    assert set(resources) == set(SEARCHABLE) | STORED | {"Binary"}
    assert not set(resources) & DIRECTORY_TYPES
    for kind in DIRECTORY_TYPES:
        assert kind in statement["rest"][0]["documentation"]
    assert "names only" in statement["rest"][0]["documentation"]


def test_interactions_are_what_each_type_supports(statement):
    resources = declared(statement)
    versioned = ["read", "vread", "history-instance", "search-type", "create", "update"]
    for kind in SEARCHABLE:
        expected = [code for code in versioned if code != "vread" or kind not in BUILT_ONLY]
        assert codes(resources[kind]) == expected, kind
        assert resources[kind]["readHistory"] is (kind not in BUILT_ONLY)
        assert resources[kind]["versioning"] == ("no-version" if kind in BUILT_ONLY else "versioned-update")
        assert resources[kind]["updateCreate"] is True and resources[kind]["conditionalCreate"] is True
    assert codes(resources["Patient"]) == ["read", "history-instance", "search-type", "create", "update"]
    assert resources["Patient"]["versioning"] == "no-version"
    assert codes(resources["Consent"]) == ["create", "update"] and "searchParam" not in resources["Consent"]
    assert codes(resources["Binary"]) == ["read"]
    rest = statement["rest"][0]
    assert codes(rest) == ["transaction", "batch"]
    assert names(rest, "operation") == ["process-message"]


def test_everything_is_declared_on_patient_with_its_parameters(statement):
    [everything] = declared(statement)["Patient"]["operation"]
    assert everything["definition"] == "http://hl7.org/fhir/OperationDefinition/Patient-everything"
    for name in search.EVERYTHING_PARAMS:
        assert f"{name} (" in everything["documentation"]


def test_the_security_service_says_what_the_tokens_are_and_claims_no_oauth(statement):
    security = statement["rest"][0]["security"]
    [service] = security["service"]
    assert service == {"text": "Bearer token (RFC 6750)"}  # no restful-security-service code: see ADR 0008
    assert "RFC 6750" in security["description"] and "no OAuth" in security["description"]
    assert security["cors"] is False


def test_each_declared_parameter_is_the_registrys_with_its_definition(statement):
    for kind, resource in declared(statement).items():
        params = {param["name"]: param for param in resource.get("searchParam", [])}
        for name, param in search.params_of(kind).items():
            assert params[name]["type"] == param.type and params[name]["documentation"] == param.documentation
            assert params[name].get("definition", "") == param.definition
            assert not param.definition or param.definition.startswith("http://hl7.org/fhir/SearchParameter/")


# Live: what is declared is answered, what is not is refused


def value_for(name: str, kind: str | None, patient) -> str:
    """A well-formed value for a parameter of that name (as the type, or any type, declares it)."""
    special = {"_sort": search.sorts_of(kind or "Condition")[0], "_summary": "count", "_count": "5", "_offset": "0"}
    if name in special:
        return special[name]
    params = search.params_of(kind) if kind else {}
    param = params.get(name) or next((p[name] for t in SEARCHABLE if name in (p := search.params_of(t))), None)
    by_type = {"date": "ge2020-01-01", "reference": f"Patient/{patient.pk}", "number": "5", "uri": "http://x.org"}
    return by_type.get(param.type, "x") if param else "x"


def every_name() -> set[str]:
    registry = {name for kind in [*SEARCHABLE, "Patient"] for name in search.params_of(kind)}
    return (registry | set(search.RESULT_PARAMS) | FHIR_NAMES) - GENERAL - {"_include", "_revinclude", "patient"}


@pytest.mark.parametrize("kind", sorted(SEARCHABLE))
def test_every_declared_search_parameter_is_answered(kind, api, reader_token, statement, patient):
    for name in names(declared(statement)[kind]):
        query = f"patient={patient.pk}" + ("" if name == "patient" else f"&{name}={value_for(name, kind, patient)}")
        response = api.get(f"/fhir/{kind}?{query}", token=reader_token)
        assert response.status_code == 200, (kind, name, response.content)
        assert body(response)["type"] == "searchset"


@pytest.mark.parametrize("kind", sorted(SEARCHABLE))
def test_a_parameter_is_accepted_if_and_only_if_declared(kind, api, reader_token, statement, patient):
    declared_here = set(names(declared(statement)[kind]))
    for name in sorted(every_name()):
        response = api.get(
            f"/fhir/{kind}?patient={patient.pk}&{name}={value_for(name, kind, patient)}", token=reader_token
        )
        if name in declared_here:
            assert response.status_code == 200, (kind, name, response.content)
        else:
            assert response.status_code == 400, (kind, name)
            [issue] = body(response)["issue"]
            assert (issue["code"], issue["expression"]) == ("not-supported", [name]), (kind, name)


@pytest.mark.parametrize("kind", sorted(SEARCHABLE))
def test_each_sort_the_statement_names_is_answered_and_no_other(kind, api, reader_token, statement, patient):
    [sort] = [param for param in declared(statement)[kind]["searchParam"] if param["name"] == "_sort"]
    for value in search.SORTS:
        response = api.get(f"/fhir/{kind}?patient={patient.pk}&_sort={value}", token=reader_token)
        named = re.search(rf"(?<![\w-]){re.escape(value)}(?![\w-])", sort["documentation"]) is not None
        if value in search.sorts_of(kind):
            assert named and response.status_code == 200, (kind, value, response.content)
        else:
            assert not named and response.status_code == 400, (kind, value)


def test_the_general_parameters_are_accepted_undeclared(api, reader_token, patient):
    for query in ("_format=json", "_pretty=true"):
        assert api.get(f"/fhir/Condition?patient={patient.pk}&{query}", token=reader_token).status_code == 200


def test_patient_search_takes_its_declared_parameters_only(api, reader_token, statement, patient):
    assert names(declared(statement)["Patient"]) == ["identifier", "_count"]
    found = api.get(
        f"/fhir/Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|{patient.nhs_number}", token=reader_token
    )
    assert found.status_code == 200 and body(found)["total"] == 1
    for name in sorted(every_name() - {"identifier", "_count"}):
        query = f"identifier={patient.nhs_number}&{name}={value_for(name, None, patient)}"
        assert api.get(f"/fhir/Patient?{query}", token=reader_token).status_code == 400, name


def test_everythings_declared_parameters_are_answered_and_others_refused(api, reader_token, patient):
    values = {"_since": "2020-01-01T00:00:00Z", "_type": "Condition", "_count": "5", "_offset": "0"}
    values |= {"_format": "json", "_pretty": "true"}
    assert set(values) == set(search.EVERYTHING_PARAMS)
    for name, value in values.items():
        response = api.get(f"/fhir/Patient/{patient.pk}/$everything?{name}={value}", token=reader_token)
        assert response.status_code == 200, (name, response.content)
    for name in ("start", "end", "_elements", "_sort"):
        response = api.get(f"/fhir/Patient/{patient.pk}/$everything?{name}=2020-01-01", token=reader_token)
        assert response.status_code == 400, name


# Live, with one resource of each type sent as a partner would send it


def example_of(kind: str) -> dict:
    resource = example_resource(f"UKCore-{kind}-{EXAMPLES[kind]}-Example.xml")
    for element in ("subject", "patient"):  # the Composition names its patient by the urn:uuid of its Bundle
        if str((resource.get(element) or {}).get("reference", "")).startswith("urn:uuid:"):
            resource[element] = {"reference": f"Patient/{SENDER_ID}"}
    if kind == "DocumentReference":  # its content inline (the example's is a link), so a Binary is kept
        data = base64.b64encode(b"Care plan report").decode()
        resource["content"] = [{"attachment": {"contentType": "text/plain", "data": data, "title": "Care plan"}}]
    return resource


@pytest.fixture
def sent(api, sender_token, care_team):
    """Richard Smith, then one example of each type, each by its own create (POST [base]/<Type>); his record
    in the reader's care. Returns (patient id, {type: our id}) read from each create's Location."""
    created = api.post("/fhir/Patient", example_resource(RICHARD_SMITH), token=sender_token)
    assert created.status_code == 201, created.content
    patient_id = re.search(r"Patient/([0-9a-f-]{36})", created["Location"])[1]
    factories.InvolvementFactory(patient=Patient.objects.get(pk=patient_id), care_team=care_team)
    ours = {}
    for kind in EXAMPLES:
        response = api.post(f"/fhir/{kind}", example_of(kind), token=sender_token)
        assert response.status_code == 201, (kind, response.content)
        if kind in SEARCHABLE and kind not in BUILT_ONLY:
            ours[kind] = re.search(rf"/{kind}/([a-z0-9-]+)/_history/1$", response["Location"])[1]
    return patient_id, ours


def test_every_declared_interaction_is_answered(api, reader_token, sender_token, statement, sent):
    patient_id, ours = sent
    resources = declared(statement)
    for kind in EXAMPLES:
        if "update" in codes(resources[kind]):
            again = example_of(kind) | {"language": "en-GB"}
            response = api.put(f"/fhir/{kind}/{again['id']}", again, token=sender_token)
            assert response.status_code == 200, (kind, response.content)
    for kind in sorted(SEARCHABLE):
        interactions = codes(resources[kind])
        found = body(api.get(f"/fhir/{kind}?patient={patient_id}", token=reader_token))
        assert "search-type" in interactions and found["total"] >= 1, kind
        our_id = ours.get(kind) or found["entry"][0]["resource"]["id"]
        read = api.get(f"/fhir/{kind}/{our_id}", token=reader_token)
        assert read.status_code == 200 and body(read)["id"] == our_id, kind
        history = api.get(f"/fhir/{kind}/{our_id}/_history", token=reader_token)
        assert history.status_code == 200 and body(history)["type"] == "history", kind
        if "vread" in interactions:
            assert body(read)["meta"]["versionId"] == "2", kind  # created, then updated
            for version in ("1", "2"):
                vread = api.get(f"/fhir/{kind}/{our_id}/_history/{version}", token=reader_token)
                assert vread.status_code == 200 and body(vread)["meta"]["versionId"] == version, kind
        else:
            assert "versionId" not in body(read).get("meta", {}), kind
            assert api.get(f"/fhir/{kind}/{our_id}/_history/1", token=reader_token).status_code == 404, kind


def test_patient_and_binary_interactions_are_answered(api, reader_token, sender_token, sent):
    patient_id, ours = sent
    assert api.get(f"/fhir/Patient/{patient_id}", token=reader_token).status_code == 200
    assert body(api.get(f"/fhir/Patient/{patient_id}/_history", token=reader_token))["type"] == "history"
    assert api.get(f"/fhir/Patient/{patient_id}/_history/1", token=reader_token).status_code == 404
    updated = api.put(f"/fhir/Patient/{SENDER_ID}", example_resource(RICHARD_SMITH), token=sender_token)
    assert updated.status_code == 200, updated.content
    assert api.get(f"/fhir/Patient/{patient_id}/$everything", token=reader_token).status_code == 200
    document = body(api.get(f"/fhir/DocumentReference/{ours['DocumentReference']}", token=reader_token))
    binary = document["content"][0]["attachment"]["url"]
    assert binary.startswith("Binary/")
    response = api.get(f"/fhir/{binary}?_format=json", token=reader_token)
    assert response.status_code == 200 and body(response)["resourceType"] == "Binary"


def test_what_is_not_declared_is_refused(api, reader_token, sender_token, sent):
    patient_id, ours = sent
    for kind in DIRECTORY_TYPES:
        assert api.get(f"/fhir/{kind}/1", token=reader_token).status_code == 404, kind
        assert api.get(f"/fhir/{kind}?patient={patient_id}", token=reader_token).status_code == 404, kind
    assert api.get("/fhir/Consent/1", token=reader_token).status_code == 404
    assert api.get("/fhir/Binary?patient=x", token=reader_token).status_code == 404
    assert api.post(f"/fhir/Condition/{ours['Condition']}", {}, method="delete", token=sender_token).status_code == 405


@pytest.mark.parametrize("kind", sorted(SEARCHABLE))
def test_every_declared_include_and_revinclude_is_answered(kind, api, reader_token, statement, sent):
    patient_id, _ = sent
    resource = declared(statement)[kind]
    assert resource["searchInclude"] == search.includes_of(kind) and resource["searchInclude"]
    for include in resource["searchInclude"]:
        found = api.get(f"/fhir/{kind}?patient={patient_id}&_include={include}", token=reader_token)
        assert found.status_code == 200, (include, found.content)
        included = [e["fullUrl"] for e in body(found)["entry"] if e["search"]["mode"] == "include"]
        assert included == [f"http://testserver/fhir/Patient/{patient_id}"], include
    assert resource["searchRevInclude"] == ["Provenance:target"]
    found = api.get(f"/fhir/{kind}?patient={patient_id}&_revinclude=Provenance:target", token=reader_token)
    assert found.status_code == 200, found.content
    provenances = [e for e in body(found)["entry"] if e["resource"]["resourceType"] == "Provenance"]
    assert bool(provenances) is (kind not in BUILT_ONLY), kind  # what came in as FHIR has its submission's
    for undeclared in (f"{kind}:performer", "*", f"{kind}:encounter"):
        assert (
            api.get(f"/fhir/{kind}?patient={patient_id}&_include={undeclared}", token=reader_token).status_code == 400
        )
    assert (
        api.get(f"/fhir/{kind}?patient={patient_id}&_revinclude=AuditEvent:entity", token=reader_token).status_code
        == 400
    )


def test_the_declared_system_interactions_and_operations_are_answered(api, sender_token):
    for kind in ("transaction", "batch"):
        response = api.post(
            "/fhir/",
            {
                "resourceType": "Bundle",
                "type": kind,
                "entry": [{"resource": patient_resource(), "request": {"method": "POST", "url": "Patient"}}],
            },
            token=sender_token,
        )
        assert response.status_code == 200 and body(response)["type"] == f"{kind}-response", kind
    response = api.post("/fhir/$process-message", {"resourceType": "Bundle", "type": "message"}, token=sender_token)
    assert response.status_code == 400 and body(response)["resourceType"] == "OperationOutcome"  # answered: no header
