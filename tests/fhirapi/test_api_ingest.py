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


def test_an_invalid_resource_is_400_naming_the_element(api, sender_token):
    invalid = condition_resource(onsetDateTime="yesterday")
    response = api.post("/fhir/Condition", invalid, token=sender_token)
    assert response.status_code == 400
    assert outcome_of(response)[0]["expression"] == ["Condition.onsetDateTime"]
    unknown = api.post("/fhir/Condition", {**condition_resource(), "colour": "red"}, token=sender_token)
    assert unknown.status_code == 400 and outcome_of(unknown)[0]["expression"] == ["Condition.colour"]
    assert api.post("/fhir/Condition", b"{not json", token=sender_token).status_code == 400


def test_an_unknown_patient_is_422_patient_not_found(api, sender_token):
    response = api.post("/fhir/Condition", condition_resource(), token=sender_token)
    assert response.status_code == 422
    [issue] = outcome_of(response)
    assert issue["code"] == "not-found" and issue["diagnostics"].startswith("Patient not found")
    assert issue["expression"] == ["Condition.subject"]


def test_the_body_must_match_the_url(api, sender_token):
    assert api.post("/fhir/Condition", patient_resource(), token=sender_token).status_code == 400
    assert api.post("/fhir/", patient_resource(), token=sender_token).status_code == 400


def test_post_an_xml_resource(api, sender_token):
    response = api.post("/fhir/Patient", example(RICHARD_SMITH), token=sender_token, content_type=FHIR_XML)
    assert response.status_code == 201
    assert response["Content-Type"].startswith(FHIR_XML)
    assert record.Patient.objects.get().nhs_number == "9912003888"


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
