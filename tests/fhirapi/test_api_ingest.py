"""Sending records in over HTTP: organisation tokens only, OperationOutcomes for every problem."""

import json

import pytest

from directory.actions import create_api_token, revoke_api_token
from patients import models as record

from .conftest import FHIR_XML, RICHARD_SMITH, bundle, condition_resource, example, patient_resource

pytestmark = pytest.mark.django_db


def outcome_of(response):
    body = json.loads(response.content)
    assert body["resourceType"] == "OperationOutcome"
    return body["issue"]


@pytest.mark.parametrize("authorization", [None, "Bearer not-a-token", "Basic dXNlcjpwYXNz"])
def test_sending_needs_a_valid_token(api, client, authorization):
    extra = {"HTTP_AUTHORIZATION": authorization} if authorization else {}
    response = client.post(
        "/fhir/Patient", json.dumps(patient_resource()), content_type="application/fhir+json", **extra
    )
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert outcome_of(response)[0]["code"] == "login"
    assert not record.Patient.objects.exists()


def test_a_revoked_token_is_refused(api, sender):
    token, secret = create_api_token(by=None, name="old feed", organisation=sender)
    revoke_api_token(by=None, token=token)
    assert api.post("/fhir/Patient", patient_resource(), token=secret).status_code == 401


def test_a_professionals_token_or_session_cannot_send(api, client, reader_token, clinician):
    assert api.post("/fhir/Patient", patient_resource(), token=reader_token).status_code == 403
    client.force_login(clinician)
    assert api.post("/fhir/Patient", patient_resource()).status_code == 403
    assert not record.Patient.objects.exists()


def test_post_a_resource_then_put_it_again(api, sender_token, sender):
    response = api.post("/fhir/Patient", patient_resource(), token=sender_token)
    assert response.status_code == 201, response.content
    assert outcome_of(response)[0]["diagnostics"] == "Patient/p1: created"
    response = api.put("/fhir/Patient/p1", patient_resource(family="Newname"), token=sender_token)
    assert response.status_code == 200 and outcome_of(response)[0]["diagnostics"] == "Patient/p1: updated"
    assert record.Patient.objects.get().family_name == "Newname"
    mismatch = api.put("/fhir/Patient/other", patient_resource(), token=sender_token)
    assert mismatch.status_code == 400 and outcome_of(mismatch)[0]["expression"] == ["Patient.id"]


@pytest.mark.hazard("H-05")
def test_an_invalid_resource_is_400_naming_the_element(api, sender_token):
    invalid = condition_resource(onsetDateTime="yesterday")
    response = api.post("/fhir/Condition", invalid, token=sender_token)
    assert response.status_code == 400
    assert outcome_of(response)[0]["expression"] == ["Condition.onsetDateTime"]
    unknown = api.post("/fhir/Condition", {**condition_resource(), "colour": "red"}, token=sender_token)
    assert unknown.status_code == 400 and outcome_of(unknown)[0]["expression"] == ["Condition.colour"]
    assert api.post("/fhir/Condition", b"{not json", token=sender_token).status_code == 400


@pytest.mark.hazard("H-06")
def test_an_unknown_patient_is_422_patient_not_found(api, sender_token):
    response = api.post("/fhir/Condition", condition_resource(), token=sender_token)
    assert response.status_code == 422
    [issue] = outcome_of(response)
    assert issue["code"] == "not-found" and issue["diagnostics"].startswith("Patient not found")
    assert issue["expression"] == ["Condition.subject"]


def test_the_body_must_match_the_url(api, sender_token):
    wrong_type = api.post("/fhir/Condition", patient_resource(), token=sender_token)
    assert wrong_type.status_code == 400
    assert outcome_of(wrong_type)[0]["diagnostics"] == "The body must be a single Condition resource."
    to_base = api.post("/fhir/", patient_resource(), token=sender_token)
    assert to_base.status_code == 400
    assert outcome_of(to_base)[0]["diagnostics"] == "POST a single resource to {base}/Patient."


def test_post_an_xml_resource(api, sender_token):
    response = api.post("/fhir/Patient", example(RICHARD_SMITH), token=sender_token, content_type=FHIR_XML)
    assert response.status_code == 201
    assert response["Content-Type"].startswith(FHIR_XML)
    assert record.Patient.objects.get().nhs_number == "9912003888"


@pytest.mark.hazard("H-05")
def test_a_batch_answers_entry_by_entry(api, sender_token):
    batch = bundle("batch", patient_resource(), condition_resource(), condition_resource("c2", patient="Patient/x"))
    response = api.post("/fhir/", batch, token=sender_token)
    assert response.status_code == 200
    body = json.loads(response.content)
    assert body["type"] == "batch-response"
    assert [e["response"]["status"] for e in body["entry"]] == [
        "201 Created",
        "201 Created",
        "422 Unprocessable Entity",
    ]
    assert body["entry"][2]["response"]["outcome"]["issue"][0]["expression"] == ["Bundle.entry[2].resource.subject"]


@pytest.mark.hazard("H-05")
def test_a_failed_transaction_is_one_outcome_and_changes_nothing(api, sender_token):
    transaction = bundle("transaction", patient_resource(), condition_resource("c2", patient="Patient/x"))
    response = api.post("/fhir/", transaction, token=sender_token)
    assert response.status_code == 422
    issues = outcome_of(response)
    assert issues[0]["diagnostics"].startswith("The transaction was not applied")
    assert issues[1]["code"] == "not-found"
    assert not record.Patient.objects.exists()
    ok = api.post("/fhir/", bundle("transaction", patient_resource(), condition_resource()), token=sender_token)
    assert ok.status_code == 200 and json.loads(ok.content)["type"] == "transaction-response"


def test_a_searchset_cannot_be_sent(api, sender_token):
    response = api.post("/fhir/", {"resourceType": "Bundle", "type": "searchset"}, token=sender_token)
    assert response.status_code == 400 and outcome_of(response)[0]["expression"] == ["Bundle.type"]


def test_a_body_over_the_upload_limit_is_413(api, sender_token, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100
    response = api.post("/fhir/Patient", patient_resource(), token=sender_token)
    assert response.status_code == 413 and outcome_of(response)[0]["code"] == "too-costly"


# Finding 9: bad input is never a 500. Malformed (not JSON, nested past reading, invalid FHIR) is a 400; valid FHIR
# whose content the record cannot hold is a 422; both an OperationOutcome naming the element.


def test_finding_9_deep_json_is_a_400_not_a_500(api, sender_token):
    """A few thousand levels made the JSON parser raise RecursionError."""
    deep = b'{"resourceType": "Patient", "extension": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    response = api.post("/fhir/Patient", deep, token=sender_token)
    assert response.status_code == 400
    assert outcome_of(response)[0]["code"] == "structure"


def test_nesting_that_json_reads_but_validation_would_recurse_on_is_a_400(api, sender_token):
    extension = {"url": "http://example.org/x", "valueString": "x"}
    for _ in range(200):
        extension = {"url": "http://example.org/x", "extension": [extension]}
    response = api.post("/fhir/Patient", patient_resource(extension=[extension]), token=sender_token)
    assert response.status_code == 400


def test_finding_9_a_nul_in_a_string_is_a_422_naming_the_element(api, sender_token):
    """PostgreSQL refuses \\x00 in text: the import failed with a DataError (500)."""
    response = api.post("/fhir/Patient", patient_resource(family="Test\x00person"), token=sender_token)
    assert response.status_code == 422
    [issue] = outcome_of(response)
    assert issue["expression"] == ["Patient.name[0].family"] and "cannot be stored" in issue["diagnostics"]
    assert not record.Patient.objects.exists()


@pytest.mark.parametrize(("text", "status"), [("bell\x07", 422), ("\ufffe", 422), ("a\ud800b", 400)])
def test_other_characters_nothing_can_carry_are_refused(api, sender_token, text, status):
    """C0 controls and non-characters (XML cannot carry them) are content the record cannot hold; a lone
    surrogate is not text at all (the FHIR models refuse it)."""
    response = api.post("/fhir/Patient", patient_resource(family=text), token=sender_token)
    assert response.status_code == status


@pytest.mark.hazard("H-09")
@pytest.mark.parametrize("moment", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00Z"])
def test_finding_9_a_date_that_overflows_when_converted_is_a_422_naming_the_element(api, sender_token, moment):
    """0001-01-01T00:00:00+14:00 is a valid dateTime, but in UTC it is before year 1: a 500 on conversion."""
    api.post("/fhir/Patient", patient_resource(), token=sender_token)
    response = api.post("/fhir/Condition", condition_resource(onsetDateTime=moment), token=sender_token)
    assert response.status_code == 422
    [issue] = outcome_of(response)
    assert issue["expression"] == ["Condition.onsetDateTime"] and "out of range" in issue["diagnostics"]


@pytest.mark.hazard("H-09")
def test_early_and_late_dates_that_convert_are_kept(api, sender_token):
    api.post("/fhir/Patient", patient_resource(), token=sender_token)
    response = api.post(
        "/fhir/Condition", condition_resource(onsetDateTime="0001-01-03T00:00:00+14:00"), token=sender_token
    )
    assert response.status_code == 201


@pytest.mark.hazard("H-09")
def test_an_overflowing_date_in_xml_is_a_422_too(api, sender_token):
    api.post("/fhir/Patient", patient_resource(), token=sender_token)
    xml = example(RICHARD_SMITH).replace(
        b'<birthDate value="', b'<deceasedDateTime value="0001-01-01T00:00:00+14:00"/><birthDate value="', 1
    )
    response = api.post("/fhir/Patient", xml, token=sender_token, content_type=FHIR_XML)
    assert response.status_code == 422
    assert response["Content-Type"].startswith(FHIR_XML)


@pytest.mark.hazard("H-05")
def test_finding_9_one_bad_entry_does_not_fail_a_batch(api, sender_token):
    """A batch reports per entry: the NUL and the overflowing date are each their entry's 422, the rest land."""
    batch = bundle(
        "batch",
        patient_resource(),
        condition_resource(),
        condition_resource("c2", onsetDateTime="0001-01-01T00:00:00+14:00"),
        patient_resource("p2", nhs_number="9990000026", family="a\x00b"),
    )
    response = api.post("/fhir/", batch, token=sender_token)
    assert response.status_code == 200
    entries = json.loads(response.content)["entry"]
    assert [e["response"]["status"] for e in entries] == [
        "201 Created",
        "201 Created",
        "422 Unprocessable Entity",
        "422 Unprocessable Entity",
    ]
    assert entries[2]["response"]["outcome"]["issue"][0]["expression"] == ["Bundle.entry[2].resource.onsetDateTime"]
    assert entries[3]["response"]["outcome"]["issue"][0]["expression"] == ["Bundle.entry[3].resource.name[0].family"]
    assert record.Patient.objects.count() == 1


@pytest.mark.hazard("H-05")
def test_finding_9_one_bad_entry_rolls_a_transaction_back_with_a_422(api, sender_token):
    transaction = bundle(
        "transaction", patient_resource(), condition_resource(onsetDateTime="9999-12-31T23:00:00-14:00")
    )
    response = api.post("/fhir/", transaction, token=sender_token)
    assert response.status_code == 422
    issues = outcome_of(response)
    assert issues[0]["diagnostics"].startswith("The transaction was not applied")
    assert issues[1]["expression"] == ["Bundle.entry[1].resource.onsetDateTime"]
    assert not record.Patient.objects.exists()


def test_a_urn_uuid_full_url_must_be_a_uuid(api, sender_token):
    """Without an id the entry is stored under its fullUrl: a urn:uuid: of any length would overflow the key."""
    entry = {"fullUrl": "urn:uuid:" + "x" * 500, "resource": {**patient_resource(), "id": None}}
    entry["resource"].pop("id")
    response = api.post("/fhir/", {"resourceType": "Bundle", "type": "batch", "entry": [entry]}, token=sender_token)
    assert response.status_code == 200
    [answer] = json.loads(response.content)["entry"]
    assert answer["response"]["status"] == "400 Bad Request"


def test_what_was_sent_is_quoted_printably_even_in_xml(api, sender_token):
    """An unknown element named "\\x1f" is reported by name: XML cannot carry the character, so it is escaped."""
    response = api.post("/fhir/Patient", {**patient_resource(), "\x1f": 1}, token=sender_token, HTTP_ACCEPT=FHIR_XML)
    assert response.status_code == 400
    assert b"Patient.\\u001f" in response.content


def test_a_nul_in_the_url_is_a_400_operation_outcome(api, sender_token):
    response = api.put("/fhir/Patient/p%001", patient_resource(), token=sender_token)
    assert response.status_code == 400
    assert outcome_of(response)[0]["diagnostics"].startswith("The URL holds a NUL")


def test_a_repeated_name_part_with_no_value_is_left_out(api, sender_token):
    """Found by fuzzing: "prefix": ["Dr", null] is FHIR JSON (with _prefix, an extension in the value's place),
    and the practitioner's name was " ".join()ed with the None in it (a 500). Such items carry nothing to show."""
    practitioner = {
        "resourceType": "Practitioner",
        "id": "dr1",
        "name": [{"family": "Rastall", "given": ["Paul"], "prefix": ["Dr", None], "_prefix": [None, {"id": "x"}]}],
    }
    assert api.post("/fhir/Practitioner", practitioner, token=sender_token).status_code == 201
    xml = (
        b'<Practitioner xmlns="http://hl7.org/fhir"><id value="dr2"/><name><family value="Rastall"/>'
        b'<given value="Paul"/><given><extension url="http://hl7.org/fhir/StructureDefinition/data-absent-reason">'
        b'<valueCode value="unknown"/></extension></given></name></Practitioner>'
    )
    assert api.post("/fhir/Practitioner", xml, token=sender_token, content_type=FHIR_XML).status_code == 201
