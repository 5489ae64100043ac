"""`_history` and vread (fhirapi/history.py): the versions carerecord kept of a resource received as FHIR,
each served as a read serves the current one, decided as a read is (H-17); only the same patient's versions
(H-06) and a sensitive version only to its sender's own staff (H-11); what carerecord keeps no versions of
(built entries, Patient) has its current state alone, and no vread."""

import base64
import json

import pytest
from fhir.resources.R4B.bundle import Bundle

from audit.models import AccessEvent
from directory.actions import add_team_member, create_api_token
from directory.models import Region
from optout import actions as optout
from patients import models as record
from tests import factories

from .conftest import condition_resource, import_json, patient_resource

pytestmark = pytest.mark.django_db

RESTRICTED = {"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"}


def body(response, status=200):
    assert response.status_code == status, response.content
    data = json.loads(response.content)
    if data["resourceType"] == "Bundle":
        Bundle.model_validate(data)
    return data


@pytest.fixture
def ours(sender, patient):
    import_json(patient_resource(nhs_number=patient.nhs_number, family=patient.family_name), sender)
    return patient


@pytest.fixture
def three_versions(sender, ours):
    """Condition c1 sent three times, each different: versions 1, 2, 3; the record's row is the latest."""
    for note in ("first", "second", "third"):
        import_json(condition_resource(note=[{"text": note}]), sender)
    return record.Condition.objects.get(patient=ours)


def history_of(api, token, path, **params):
    query = "&".join(f"{name}={value}" for name, value in params.items())
    return body(api.get(f"/fhir/{path}/_history" + (f"?{query}" if query else ""), token=token))


@pytest.mark.hazard("H-17")
def test_history_gives_every_version_newest_first_as_reads_serve_them(api, reader_token, three_versions, ours):
    condition = three_versions
    data = history_of(api, reader_token, f"Condition/{condition.pk}")
    assert data["type"] == "history"
    assert data["total"] == 3
    entries = data["entry"]
    assert [e["resource"]["meta"]["versionId"] for e in entries] == ["3", "2", "1"]
    assert [e["resource"]["note"][0]["text"] for e in entries] == ["third", "second", "first"]
    assert {e["resource"]["id"] for e in entries} == {str(condition.pk)}
    assert {e["resource"]["subject"]["reference"] for e in entries} == {f"Patient/{ours.pk}"}
    assert all(e["fullUrl"].endswith(f"/fhir/Condition/{condition.pk}") for e in entries)
    assert [e["request"] for e in entries] == [
        {"method": "PUT", "url": f"Condition/{condition.pk}"},
        {"method": "PUT", "url": f"Condition/{condition.pk}"},
        {"method": "POST", "url": "Condition"},
    ]
    assert [e["response"]["status"] for e in entries] == ["200 OK", "200 OK", "201 Created"]
    assert [e["response"]["etag"] for e in entries] == ['W/"3"', 'W/"2"', 'W/"1"']
    # The newest entry is exactly what a read gives.
    read = body(api.get(f"/fhir/Condition/{condition.pk}", token=reader_token))
    assert entries[0]["resource"] == read
    assert AccessEvent.objects.filter(page="fhir:Condition:history").count() == 1


@pytest.mark.hazard("H-17")
def test_vread_gives_that_version_with_its_etag(api, reader_token, three_versions):
    condition = three_versions
    response = api.get(f"/fhir/Condition/{condition.pk}/_history/2", token=reader_token)
    data = body(response)
    assert data["meta"]["versionId"] == "2"
    assert data["note"] == [{"text": "second"}]
    assert response["ETag"] == 'W/"2"'
    assert "GMT" in response["Last-Modified"]
    assert AccessEvent.objects.filter(page="fhir:Condition:vread").count() == 1


@pytest.mark.hazard("H-17")
def test_read_carries_the_current_version_as_etag(api, reader_token, three_versions):
    response = api.get(f"/fhir/Condition/{three_versions.pk}", token=reader_token)
    assert body(response)["meta"]["versionId"] == "3"
    assert response["ETag"] == 'W/"3"'


@pytest.mark.hazard("H-17")
@pytest.mark.parametrize("vid", ["4", "0", "x", "1.0", "-1"])
def test_a_version_not_held_is_404(api, reader_token, three_versions, vid):
    data = body(api.get(f"/fhir/Condition/{three_versions.pk}/_history/{vid}", token=reader_token), 404)
    assert data["issue"][0]["code"] == "not-found"


def refusal(response):
    assert response.status_code == 403, response.content
    return json.loads(response.content)


@pytest.fixture
def objected(patient):
    objection = optout.record_professional_objection(
        by=None, patient=patient, reason="", how_told="In clinic", region=Region.NCL
    )
    optout.verify(by=None, objection=objection, identity_check="documents")
    optout.uphold(by=None, objection=objection)
    return patient


@pytest.mark.hazard("H-17")
@pytest.mark.parametrize("who", ["outsider", "clinician_other_org", "objected"])
@pytest.mark.parametrize("ask", ["_history", "_history/1"])
def test_a_reader_who_may_not_see_it_is_refused_as_for_an_unknown_id(api, request, three_versions, who, ask):
    if who == "objected":
        request.getfixturevalue("objected")
        user = request.getfixturevalue("clinician")
    else:
        user = request.getfixturevalue(who)
    _, token = create_api_token(by=None, name="Viewer", user=user)
    refused = refusal(api.get(f"/fhir/Condition/{three_versions.pk}/{ask}", token=token))
    unknown = refusal(api.get(f"/fhir/Condition/999999/{ask}", token=token))
    assert refused == unknown
    assert refused["issue"][0]["diagnostics"] == "Record not available."
    page = "fhir:Condition:history" if ask == "_history" else "fhir:Condition:vread"
    assert AccessEvent.objects.filter(page=page).count() == 2


@pytest.mark.hazard("H-17")
def test_a_withdrawn_entry_has_no_history_to_give(api, reader_token, three_versions):
    import_json(condition_resource(verificationStatus=entered_in_error()), three_versions.source_organisation)
    assert refusal(api.get(f"/fhir/Condition/{three_versions.pk}/_history", token=reader_token))
    assert refusal(api.get(f"/fhir/Condition/{three_versions.pk}/_history/1", token=reader_token))


def entered_in_error():
    system = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
    return {"coding": [{"system": system, "code": "entered-in-error"}]}


@pytest.mark.hazard("H-17")
@pytest.mark.hazard("H-06")
def test_a_version_that_named_another_patient_is_never_given(api, reader_token, sender, ours):
    other = factories.PatientFactory(given_name="Bea", family_name="Otherperson")
    import_json(patient_resource("p2", nhs_number=other.nhs_number, family=other.family_name), sender)
    wrong = condition_resource(subject={"reference": "Patient/p2"}, note=[{"text": "sent for the wrong patient"}])
    import_json(wrong, sender)
    import_json(condition_resource(note=[{"text": "corrected"}]), sender)
    condition = record.Condition.objects.get(source_id="Condition/c1")
    assert condition.patient_id == ours.pk
    data = history_of(api, reader_token, f"Condition/{condition.pk}")
    assert data["total"] == 1
    assert [e["resource"]["note"][0]["text"] for e in data["entry"]] == ["corrected"]
    assert data["entry"][0]["resource"]["meta"]["versionId"] == "2"
    gone = body(api.get(f"/fhir/Condition/{condition.pk}/_history/1", token=reader_token), 404)
    assert gone["issue"][0]["code"] == "not-found"
    assert "wrong patient" not in json.dumps(gone)


@pytest.fixture
def senders_clinician(sender, patient):
    """A professional at the sending organisation, in a team caring for the patient: sees its sensitive entries."""
    team = factories.CareTeamFactory(organisation=sender, name="Sender's clinic")
    factories.InvolvementFactory(patient=patient, care_team=team)
    professional = factories.ProfessionalFactory(organisation=sender)
    add_team_member(by=None, team=team, professional=professional)
    _, token = create_api_token(by=None, name="Sender's viewer", user=professional.user)
    return token


@pytest.mark.hazard("H-17")
@pytest.mark.hazard("H-11")
def test_a_version_labelled_sensitive_goes_only_to_the_senders_own_staff(
    api, reader_token, senders_clinician, sender, ours
):
    import_json(condition_resource(meta={"security": [RESTRICTED]}, note=[{"text": "sexual health clinic"}]), sender)
    import_json(condition_resource(note=[{"text": "no longer labelled"}]), sender)
    condition = record.Condition.objects.get(patient=ours)
    others = history_of(api, reader_token, f"Condition/{condition.pk}")
    assert others["total"] == 1
    assert [e["resource"]["meta"]["versionId"] for e in others["entry"]] == ["2"]
    assert "sexual health" not in json.dumps(others)
    assert body(api.get(f"/fhir/Condition/{condition.pk}/_history/1", token=reader_token), 404)
    own = history_of(api, senders_clinician, f"Condition/{condition.pk}")
    assert [e["resource"]["meta"]["versionId"] for e in own["entry"]] == ["2", "1"]
    assert body(api.get(f"/fhir/Condition/{condition.pk}/_history/1", token=senders_clinician))["meta"]["security"]


@pytest.mark.hazard("H-11")
def test_an_entry_sensitive_now_has_no_history_for_other_organisations(
    api, reader_token, senders_clinician, sender, ours
):
    import_json(condition_resource(note=[{"text": "first"}]), sender)
    import_json(condition_resource(meta={"security": [RESTRICTED]}, note=[{"text": "labelled"}]), sender)
    condition = record.Condition.objects.get(patient=ours)
    assert refusal(api.get(f"/fhir/Condition/{condition.pk}/_history", token=reader_token))
    assert history_of(api, senders_clinician, f"Condition/{condition.pk}")["total"] == 2


@pytest.mark.hazard("H-17")
def test_an_entry_not_received_as_fhir_has_its_current_state_only(api, reader_token, patient, other_organisation):
    condition = factories.ConditionFactory(patient=patient, source_organisation=other_organisation)
    data = history_of(api, reader_token, f"Condition/{condition.pk}")
    assert data["total"] == 1
    [entry] = data["entry"]
    assert "versionId" not in entry["resource"]["meta"]
    assert entry["resource"] == body(api.get(f"/fhir/Condition/{condition.pk}", token=reader_token))
    assert entry["request"] == {"method": "PUT", "url": f"Condition/{condition.pk}"}
    assert "etag" not in entry["response"]
    missing = body(api.get(f"/fhir/Condition/{condition.pk}/_history/1", token=reader_token), 404)
    assert "versions only of resources received as FHIR" in missing["issue"][0]["diagnostics"]
    assert "ETag" not in api.get(f"/fhir/Condition/{condition.pk}", token=reader_token)


@pytest.mark.hazard("H-17")
def test_patient_history_is_the_master_view_alone(api, reader_token, ours):
    data = history_of(api, reader_token, f"Patient/{ours.pk}")
    assert data["total"] == 1
    [entry] = data["entry"]
    assert entry["resource"] == body(api.get(f"/fhir/Patient/{ours.pk}", token=reader_token))
    assert "versionId" not in (entry["resource"].get("meta") or {})
    missing = body(api.get(f"/fhir/Patient/{ours.pk}/_history/1", token=reader_token), 404)
    assert missing["issue"][0]["code"] == "not-found"
    assert AccessEvent.objects.filter(page="fhir:Patient:history").count() == 1
    assert AccessEvent.objects.filter(page="fhir:Patient:vread").count() == 1


@pytest.mark.hazard("H-17")
def test_patient_history_of_a_patient_the_reader_may_not_see_is_refused(api, outsider, ours):
    _, token = create_api_token(by=None, name="Viewer", user=outsider)
    assert refusal(api.get(f"/fhir/Patient/{ours.pk}/_history", token=token)) == refusal(
        api.get("/fhir/Patient/00000000-0000-4000-8000-000000000000/_history", token=token)
    )


def test_binary_is_read_only(api, reader_token):
    data = body(api.get("/fhir/Binary/1/_history", token=reader_token), 404)
    assert data["issue"][0]["code"] == "not-supported"
    assert not AccessEvent.objects.exists()


@pytest.mark.hazard("H-17")
def test_history_is_paged(api, reader_token, three_versions):
    path = f"Condition/{three_versions.pk}"
    first = history_of(api, reader_token, path, _count=2)
    assert first["total"] == 3
    assert [e["resource"]["meta"]["versionId"] for e in first["entry"]] == ["3", "2"]
    links = {link["relation"]: link["url"] for link in first["link"]}
    assert "_offset=2" in links["next"] and "previous" not in links
    rest = body(api.get(links["next"].removeprefix("http://testserver"), token=reader_token))
    assert [e["resource"]["meta"]["versionId"] for e in rest["entry"]] == ["1"]
    assert "next" not in {link["relation"] for link in rest["link"]}
    counted = history_of(api, reader_token, path, _count=0)
    assert counted["total"] == 3 and "entry" not in counted


@pytest.mark.hazard("H-17")
def test_history_since_gives_the_versions_updated_at_or_after_it(api, reader_token, sender, ours):
    for stamp in ("2024-01-01T10:00:00Z", "2024-02-01T10:00:00Z", "2024-03-01T10:00:00Z"):
        import_json(condition_resource(meta={"lastUpdated": stamp}, note=[{"text": stamp}]), sender)
    condition = record.Condition.objects.get(patient=ours)
    data = history_of(api, reader_token, f"Condition/{condition.pk}", _since="2024-02-01T10:00:00Z")
    assert [e["resource"]["meta"]["lastUpdated"] for e in data["entry"]] == [
        "2024-03-01T10:00:00Z",
        "2024-02-01T10:00:00Z",
    ]
    assert data["total"] == 2
    assert history_of(api, reader_token, f"Condition/{condition.pk}", _since="2025-01-01T00:00:00Z")["total"] == 0


@pytest.mark.parametrize(
    "query, named", [("_count=x", "_count"), ("_since=2024-01-01", "_since"), ("_at=2024", "_at"), ("_sort=x", "_sort")]
)
def test_a_history_parameter_not_understood_is_400(api, reader_token, three_versions, query, named):
    data = body(api.get(f"/fhir/Condition/{three_versions.pk}/_history?{query}", token=reader_token), 400)
    assert data["issue"][0]["expression"] == [named]
    assert not AccessEvent.objects.exists()


def test_history_and_vread_in_xml(api, reader_token, three_versions):
    response = api.get(f"/fhir/Condition/{three_versions.pk}/_history?_format=xml", token=reader_token)
    assert response.status_code == 200
    parsed = Bundle.model_validate_xml(response.content)
    assert [e.resource.meta.versionId for e in parsed.entry] == ["3", "2", "1"]
    response = api.get(f"/fhir/Condition/{three_versions.pk}/_history/2?_format=xml", token=reader_token)
    assert response.status_code == 200 and b'<versionId value="2"/>' in response.content


def test_history_queries_do_not_grow_with_versions(api, reader_token, sender, ours, django_assert_max_num_queries):
    for n in range(30):
        import_json(condition_resource(note=[{"text": f"version {n}"}]), sender)
    condition = record.Condition.objects.get(patient=ours)
    with django_assert_max_num_queries(25):
        data = history_of(api, reader_token, f"Condition/{condition.pk}")
    assert data["total"] == 30


@pytest.mark.hazard("H-17")
def test_an_observation_has_its_versions(api, reader_token, sender, ours):
    observation = {
        "resourceType": "Observation",
        "id": "hr1",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4", "display": "Heart rate"}]},
        "subject": {"reference": "Patient/p1"},
        "effectiveDateTime": "2024-01-01T09:00:00Z",
        "valueQuantity": {"value": 60, "unit": "beats/minute"},
    }
    import_json(observation, sender)
    import_json({**observation, "valueQuantity": {"value": 62, "unit": "beats/minute"}}, sender)
    row = record.Observation.objects.get(patient=ours)
    data = history_of(api, reader_token, f"Observation/{row.pk}")
    assert [e["resource"]["valueQuantity"]["value"] for e in data["entry"]] == [62, 60]
    assert {e["resource"]["id"] for e in data["entry"]} == {str(row.pk)}


@pytest.mark.hazard("H-17")
def test_a_documents_versions_link_only_the_content_each_had(api, reader_token, sender, ours):
    """The letter holds its latest version's attachment: version 2 links it as Binary/<id>, as a read does;
    version 1's content has been replaced, and is not shown as version 2's."""
    first, second = b"%PDF-1.4\nfirst\n%%EOF\n", b"%PDF-1.4\nsecond\n%%EOF\n"
    for pdf in (first, second):
        attachment = {"contentType": "application/pdf", "data": base64.b64encode(pdf).decode(), "title": "Letter"}
        document = {
            "resourceType": "DocumentReference",
            "id": "d1",
            "status": "current",
            "subject": {"reference": "Patient/p1"},
            "content": [{"attachment": attachment}],
        }
        import_json(document, sender)
    letter = record.Letter.objects.get(patient=ours)
    [held] = record.LetterAttachment.objects.filter(letter=letter)
    entries = history_of(api, reader_token, f"DocumentReference/{letter.pk}")["entry"]
    latest, earlier = (entry["resource"]["content"] for entry in entries)
    assert [content["attachment"].get("url") for content in latest] == [f"Binary/{held.pk}"]
    assert entries[0]["resource"] == body(api.get(f"/fhir/DocumentReference/{letter.pk}", token=reader_token))
    assert [content["attachment"].get("url") for content in earlier] == [None]
    assert "data" not in earlier[0]["attachment"]


@pytest.mark.parametrize("ask", ["_history", "_history/1"])
def test_reading_versions_needs_a_professionals_token(api, sender_token, three_versions, ask):
    path = f"/fhir/Condition/{three_versions.pk}/{ask}"
    assert api.get(path).status_code == 401
    assert api.get(path, token=sender_token).status_code == 403  # an organisation's token sends, never reads
    assert not AccessEvent.objects.exists()
