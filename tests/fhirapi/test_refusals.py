"""What must be refused rather than read: two entries of one Bundle with the same fullUrl (H-06: a reference to it
could land on either resource, perhaps another patient), and a modifier extension carerecord does not
understand (H-10: it changes the meaning of what holds it, and FHIR requires refusing what is not understood).
Before, both were accepted."""

import json

import pytest

from fhirapi.models import ReceivedResource
from patients import models as record

from .conftest import FHIR_XML, bundle, condition_resource, patient_resource

pytestmark = pytest.mark.django_db

URN = "urn:uuid:0b0c4b5e-0000-4000-8000-000000000001"
MODIFIER = {"url": "https://example.org/StructureDefinition/not-this", "valueBoolean": True}


def issues_of(response):
    return json.loads(response.content)["issue"]


def two_patients_one_full_url(kind):
    ada = patient_resource("p1", nhs_number="9990000018", family="Adaperson")
    bob = patient_resource("p2", nhs_number="9990000026", family="Bobperson")
    condition = condition_resource(patient=URN)
    return bundle(kind, ada, bob, condition, full_urls=[URN, URN, None])


@pytest.mark.hazard("H-06")
def test_a_transaction_with_a_full_url_twice_is_refused_whole(api, sender_token):
    response = api.post("/fhir/", two_patients_one_full_url("transaction"), token=sender_token)
    assert response.status_code == 400
    issues = issues_of(response)
    assert issues[0]["diagnostics"].startswith("The transaction was not applied")
    named = [issue["expression"] for issue in issues if "fullUrl" in issue["diagnostics"]]
    assert named == [["Bundle.entry[0].fullUrl"], ["Bundle.entry[1].fullUrl"]]
    assert not record.Patient.objects.exists() and not ReceivedResource.objects.exists()


@pytest.mark.hazard("H-06")
def test_a_batch_refuses_every_entry_sharing_a_full_url(api, sender_token):
    response = api.post("/fhir/", two_patients_one_full_url("batch"), token=sender_token)
    assert response.status_code == 200
    entries = json.loads(response.content)["entry"]
    assert [e["response"]["status"] for e in entries] == [
        "400 Bad Request",
        "400 Bad Request",
        "422 Unprocessable Entity",
    ]
    assert entries[0]["response"]["outcome"]["issue"][0]["expression"] == ["Bundle.entry[0].fullUrl"]
    # The condition named that fullUrl: with neither patient taken, it joins no one's record.
    assert entries[2]["response"]["outcome"]["issue"][0]["code"] == "not-found"
    assert not record.Patient.objects.exists() and not record.Condition.objects.exists()


@pytest.mark.hazard("H-06")
def test_a_full_url_twice_in_xml_is_refused_too(api, sender_token):
    entry = (
        '<entry><fullUrl value="{urn}"/><resource><Patient><id value="{id}"/></Patient></resource>'
        '<request><method value="POST"/><url value="Patient"/></request></entry>'
    )
    xml = (
        '<Bundle xmlns="http://hl7.org/fhir"><type value="transaction"/>'
        + entry.format(urn=URN, id="p1")
        + entry.format(urn=URN, id="p2")
        + "</Bundle>"
    ).encode()
    response = api.post("/fhir/", xml, token=sender_token, content_type=FHIR_XML)
    assert response.status_code == 400 and b"Bundle.entry[1].fullUrl" in response.content


@pytest.mark.hazard("H-10")
@pytest.mark.parametrize(
    ("changes", "where"),
    [
        ({"modifierExtension": [MODIFIER]}, "Condition.modifierExtension[0]"),
        (
            {"stage": [{"summary": {"text": "1"}}, {"summary": {"text": "2"}, "modifierExtension": [MODIFIER]}]},
            "Condition.stage[1].modifierExtension[0]",
        ),
        (
            {"contained": [{"resourceType": "Medication", "id": "m", "modifierExtension": [MODIFIER]}]},
            "Condition.contained[0].modifierExtension[0]",
        ),
    ],
)
def test_a_modifier_extension_refuses_the_resource_naming_it(api, sender_token, changes, where):
    api.post("/fhir/Patient", patient_resource(), token=sender_token)
    response = api.post("/fhir/Condition", condition_resource(**changes), token=sender_token)
    assert response.status_code == 422
    [issue] = issues_of(response)
    assert (issue["code"], issue["expression"]) == ("not-supported", [where])
    assert MODIFIER["url"] in issue["diagnostics"]
    assert not record.Condition.objects.exists()
    assert not ReceivedResource.objects.filter(resource_type="Condition").exists()


@pytest.mark.hazard("H-10")
def test_in_a_batch_only_the_entry_with_the_modifier_is_refused(api, sender_token):
    batch = bundle(
        "batch", patient_resource(), condition_resource(), condition_resource("c2", modifierExtension=[MODIFIER])
    )
    batch["entry"][1]["request"]["modifierExtension"] = [MODIFIER]  # on the entry itself: that entry too
    response = api.post("/fhir/", batch, token=sender_token)
    statuses = [e["response"]["status"] for e in json.loads(response.content)["entry"]]
    assert statuses == ["201 Created", "422 Unprocessable Entity", "422 Unprocessable Entity"]
    outcome = json.loads(response.content)["entry"][1]["response"]["outcome"]["issue"][0]
    assert outcome["expression"] == ["Bundle.entry[1].request.modifierExtension[0]"]
    assert record.Patient.objects.count() == 1 and not record.Condition.objects.exists()


@pytest.mark.hazard("H-10")
def test_a_modifier_extension_in_xml_is_refused_naming_it(api, sender_token):
    api.post("/fhir/Patient", patient_resource(), token=sender_token)
    xml = (
        b'<Condition xmlns="http://hl7.org/fhir"><id value="c1"/>'
        b'<modifierExtension url="https://example.org/x"><valueBoolean value="true"/></modifierExtension>'
        b'<code><text value="Asthma"/></code><subject><reference value="Patient/p1"/></subject></Condition>'
    )
    response = api.post("/fhir/Condition", xml, token=sender_token, content_type=FHIR_XML)
    assert response.status_code == 422 and response["Content-Type"].startswith(FHIR_XML)
    assert b"Condition.modifierExtension[0]" in response.content and b"not-supported" in response.content
    assert not record.Condition.objects.exists()


def test_an_ordinary_extension_is_kept_not_refused(api, sender_token):
    api.post("/fhir/Patient", patient_resource(), token=sender_token)
    extension = [{"url": "https://example.org/x", "valueString": "fine"}]
    assert api.post("/fhir/Condition", condition_resource(extension=extension), token=sender_token).status_code == 201
