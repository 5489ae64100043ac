"""If-Match (H-17): an update sent against a version applies only if that is the latest kept version of the
sender's resource; stale or none held -> 412 with an OperationOutcome naming the version held, and nothing
changed (a transaction rolled back whole, a batch's other entries applied). A value that is no version -> 400."""

import json
import threading

import pytest
from django.db import connection

from fhirapi.ingest import ingest
from fhirapi.models import ReceivedResource
from fhirapi.parse import read
from patients import models as record

from .conftest import FHIR_XML, condition_resource, import_json, patient_resource

pytestmark = pytest.mark.django_db


@pytest.fixture
def held(sender, patient):
    """Condition c1 at version 2 (sent twice, differently)."""
    import_json(patient_resource(nhs_number=patient.nhs_number, family=patient.family_name), sender)
    import_json(condition_resource(note=[{"text": "first"}]), sender)
    import_json(condition_resource(note=[{"text": "second"}]), sender)
    return record.Condition.objects.get(patient=patient)


def versions():
    return list(
        ReceivedResource.objects.filter(resource_type="Condition", resource_id="c1")
        .order_by("version")
        .values_list("version", flat=True)
    )


def put(api, token, resource, if_match=None, **extra):
    headers = {"HTTP_IF_MATCH": if_match} if if_match is not None else {}
    return api.put(f"/fhir/Condition/{resource['id']}", resource, token=token, **headers, **extra)


def transaction(*entries, kind="transaction"):
    return {"resourceType": "Bundle", "type": kind, "entry": list(entries)}


def put_entry(resource, if_match=None):
    request = {"method": "PUT", "url": f"{resource['resourceType']}/{resource['id']}"}
    if if_match is not None:
        request["ifMatch"] = if_match
    return {"resource": resource, "request": request}


@pytest.mark.hazard("H-17")
@pytest.mark.parametrize("if_match", ['W/"2"', '"2"', "2"])
def test_an_update_against_the_latest_version_applies(api, sender_token, held, if_match):
    response = put(api, sender_token, condition_resource(note=[{"text": "third"}]), if_match)
    assert response.status_code == 200, response.content
    assert versions() == [1, 2, 3]
    assert response["ETag"] == 'W/"3"'
    assert response["Location"].endswith(f"/fhir/Condition/{held.pk}/_history/3")


@pytest.mark.hazard("H-17")
def test_a_stale_update_is_refused_with_412_and_changes_nothing(api, sender_token, held):
    response = put(api, sender_token, condition_resource(note=[{"text": "third"}]), 'W/"1"')
    assert response.status_code == 412, response.content
    [issue] = json.loads(response.content)["issue"]
    assert issue["code"] == "conflict"
    assert 'W/"2"' in issue["diagnostics"]
    assert versions() == [1, 2]
    assert "ETag" not in response and "Location" not in response


@pytest.mark.hazard("H-17")
def test_if_match_on_a_resource_never_received_is_412(api, sender_token, held):
    response = put(api, sender_token, condition_resource("c9", note=[{"text": "new"}]), 'W/"1"')
    assert response.status_code == 412, response.content
    assert "no version of it is held" in json.loads(response.content)["issue"][0]["diagnostics"]
    assert not record.Condition.objects.filter(source_id="Condition/c9").exists()


@pytest.mark.hazard("H-17")
@pytest.mark.parametrize("if_match", ['W/"two"', "W/2", "", '"2', "*"])
def test_an_if_match_that_is_no_version_is_400(api, sender_token, held, if_match):
    response = put(api, sender_token, condition_resource(note=[{"text": "third"}]), if_match)
    assert response.status_code == 400, response.content
    assert json.loads(response.content)["issue"][0]["code"] == "invalid"
    assert versions() == [1, 2]


def test_if_match_on_a_create_is_400(api, sender_token, held):
    response = api.post("/fhir/Condition", condition_resource("c2"), token=sender_token, HTTP_IF_MATCH='W/"1"')
    assert response.status_code == 400, response.content
    assert not record.Condition.objects.filter(source_id="Condition/c2").exists()


@pytest.mark.hazard("H-17")
def test_a_stale_entry_rolls_a_transaction_back_whole(api, sender_token, held):
    body = transaction(
        put_entry(condition_resource("c2", name="Asthma")),
        put_entry(condition_resource(note=[{"text": "third"}]), 'W/"1"'),
    )
    response = api.post("/fhir/", body, token=sender_token)
    assert response.status_code == 412, response.content
    diagnostics = [issue["diagnostics"] for issue in json.loads(response.content)["issue"]]
    assert any('the version held is W/"2"' in text for text in diagnostics)
    assert versions() == [1, 2]
    assert not record.Condition.objects.filter(source_id="Condition/c2").exists()


@pytest.mark.hazard("H-17")
def test_a_batch_refuses_the_stale_entry_and_applies_the_others(api, sender_token, held):
    body = transaction(
        put_entry(condition_resource("c2", name="Asthma")),
        put_entry(condition_resource(note=[{"text": "third"}]), 'W/"1"'),
        kind="batch",
    )
    response = api.post("/fhir/", body, token=sender_token)
    assert response.status_code == 200, response.content
    first, second = json.loads(response.content)["entry"]
    assert first["response"]["status"] == "201 Created"
    assert second["response"]["status"] == "412 Precondition Failed"
    issue = second["response"]["outcome"]["issue"][0]
    assert (issue["code"], issue["expression"]) == ("conflict", ["Bundle.entry[1].request.ifMatch"])
    assert versions() == [1, 2]


@pytest.mark.hazard("H-17")
def test_an_entry_against_the_latest_version_applies_in_a_transaction(api, sender_token, held):
    body = transaction(put_entry(condition_resource(note=[{"text": "third"}]), 'W/"2"'))
    response = api.post("/fhir/", body, token=sender_token)
    assert response.status_code == 200, response.content
    [entry] = json.loads(response.content)["entry"]
    assert entry["response"]["etag"] == 'W/"3"'
    assert versions() == [1, 2, 3]


@pytest.mark.parametrize("if_match", ["W/x", 3])
def test_a_bundle_entry_if_match_that_is_no_version_is_400(api, sender_token, held, if_match):
    body = transaction(put_entry(condition_resource(note=[{"text": "third"}]), if_match))
    response = api.post("/fhir/", body, token=sender_token)
    assert response.status_code == 400, response.content
    assert versions() == [1, 2]


def test_if_match_on_a_post_entry_is_400(api, sender_token, held):
    entry = {"resource": condition_resource("c2"), "request": {"method": "POST", "url": "Condition", "ifMatch": "1"}}
    response = api.post("/fhir/", transaction(entry), token=sender_token)
    assert response.status_code == 400, response.content
    assert "ifMatch" in json.loads(response.content)["issue"][-1]["expression"][0]


def test_if_match_on_a_bundle_is_400(api, sender_token, held):
    body = transaction(put_entry(condition_resource(note=[{"text": "third"}])))
    response = api.post("/fhir/", body, token=sender_token, HTTP_IF_MATCH='W/"2"')
    assert response.status_code == 400, response.content
    assert versions() == [1, 2]


@pytest.mark.hazard("H-17")
def test_if_match_in_an_xml_bundle_is_checked(api, sender_token, held):
    from fhir.resources.R4B.bundle import Bundle

    body = Bundle.model_validate(
        transaction(put_entry(condition_resource(note=[{"text": "third"}]), 'W/"1"'))
    ).model_dump_xml()
    response = api.post("/fhir/", body, token=sender_token, content_type=FHIR_XML)
    assert response.status_code == 412, response.content
    assert versions() == [1, 2]


@pytest.mark.hazard("H-17")
@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite serialises writers: nothing to race")
def test_two_writers_of_one_version_cannot_both_pass(sender, patient):
    """Four updates against version 2 at once: one applies (version 3), the other three are stale (412)."""
    import_json(patient_resource(nhs_number=patient.nhs_number, family=patient.family_name), sender)
    import_json(condition_resource(note=[{"text": "first"}]), sender)
    import_json(condition_resource(note=[{"text": "second"}]), sender)
    start, reports, failures = threading.Barrier(4), [], []

    def run(n):
        try:
            submission = read(json.dumps(condition_resource(note=[{"text": f"writer {n}"}])).encode())
            submission.entries[0].if_match = 'W/"2"'
            start.wait()
            reports.append(ingest(submission, organisation=sender))
        except Exception as exc:  # reported by the assertion below
            failures.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    statuses = sorted(report.outcomes[0].http_status for report in reports)
    assert statuses == [0, 412, 412, 412]
    assert versions() == [1, 2, 3]
