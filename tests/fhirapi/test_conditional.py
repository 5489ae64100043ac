"""Issue 13: conditional references, conditional create (ifNoneExist, If-None-Exist) and conditional update
(PUT Type?identifier=), as FHIR R4 defines them (http.html#ccreate, #cond-update, the transaction rules).

A conditional reference names exactly one resource or is refused (not-found 422, multiple-matches 412), never
guessed (H-06); a conditional create never duplicates what it matches and says what it did (H-05); a
conditional update updates the one it finds, a Patient through the per-source demographics rules (H-06).
"""

import json

import pytest

from directory.models import Organisation
from fhirapi.models import ReceivedResource
from fhirapi.systems import NHS_NUMBER, ODS_CODE
from patients import models as record
from tests import factories

from .conftest import bundle, condition_resource, import_json, patient_resource

pytestmark = pytest.mark.django_db

NHS = "9990000018"
OTHER_NHS = "9990000026"
MRN = "https://trust.example.nhs.uk/Id/mrn"
BY_NHS = f"Patient?identifier={NHS_NUMBER}|{NHS}"


def body(response):
    return json.loads(response.content)


def issues(response) -> list[dict]:
    data = body(response)
    assert data["resourceType"] == "OperationOutcome", data
    return data["issue"]


def errors(response) -> list[dict]:
    return [issue for issue in issues(response) if issue["severity"] == "error"]


def with_mrn(resource, mrn):
    return {**resource, "identifier": [*resource["identifier"], {"system": MRN, "value": mrn}]}


def conditions_of(patient_nhs=NHS):
    return record.Condition.objects.filter(patient__nhs_number=patient_nhs)


def entry(resource, *, method="POST", url=None, full_url=None, if_none_exist=None):
    request = {"method": method, "url": url or resource["resourceType"]}
    if if_none_exist is not None:
        request["ifNoneExist"] = if_none_exist
    item = {"resource": resource, "request": request}
    if full_url:
        item["fullUrl"] = full_url
    return item


def bundle_of(kind, *entries):
    return {"resourceType": "Bundle", "type": kind, "entry": list(entries)}


@pytest.fixture
def gp_practice():
    return factories.OrganisationFactory(name="Riverside Practice", kind=Organisation.Kind.GP_PRACTICE)


@pytest.fixture
def known(gp_practice):
    """Two patients the shared record holds, sent by a GP practice (not the sender)."""
    import_json(patient_resource("gp-a", nhs_number=NHS, family="Rightperson"), gp_practice)
    import_json(patient_resource("gp-b", nhs_number=OTHER_NHS, family="Otherperson"), gp_practice)
    return record.Patient.objects.get(nhs_number=NHS)


# --- conditional references ---


@pytest.mark.hazard("H-06")
def test_a_conditional_reference_by_nhs_number_joins_exactly_that_patients_record(api, sender_token, known):
    """The issue's case: `Patient?identifier=…|<NHS number>` was 'not found' while an identifier reference to the
    same patient worked. The sender never sent this patient: the NHS number names them, whoever sent them."""
    response = api.post("/fhir/Condition", condition_resource(patient=BY_NHS), token=sender_token)
    assert response.status_code == 201, response.content
    [condition] = record.Condition.objects.all()
    assert condition.patient == known and known.nhs_number == NHS
    assert not conditions_of(OTHER_NHS).exists()


@pytest.mark.hazard("H-06")
@pytest.mark.parametrize(
    "reference",
    [
        f"Patient?identifier={NHS_NUMBER}|999 000 0018",  # spaces, as people write it
        "Patient?identifier=https%3A%2F%2Ffhir.nhs.uk%2FId%2Fnhs-number%7C9990000018",  # percent-encoded
        f"Patient?identifier={NHS_NUMBER}|{NHS}&_format=json",  # a parameter that shapes results, not matches
    ],
)
def test_a_conditional_reference_is_read_as_a_search_url(sender, known, reference):
    [outcome] = import_json(condition_resource(patient=reference), sender).outcomes
    assert outcome.status == "created", outcome.issues
    assert record.Condition.objects.get().patient == known


@pytest.mark.hazard("H-06")
def test_a_conditional_reference_finds_a_patient_sent_in_the_same_transaction(api, sender_token):
    sent = bundle("transaction", patient_resource(nhs_number=OTHER_NHS), condition_resource(patient=BY_NHS))
    sent["entry"][0]["resource"]["identifier"][0]["value"] = NHS
    response = api.post("/fhir/", sent, token=sender_token)
    assert response.status_code == 200, response.content
    assert [e["response"]["status"] for e in body(response)["entry"]] == ["201 Created", "201 Created"]
    assert record.Condition.objects.get().patient.nhs_number == NHS


@pytest.mark.hazard("H-06")
def test_no_patient_with_that_nhs_number_is_not_found_naming_the_element(api, sender_token, known):
    reference = f"Patient?identifier={NHS_NUMBER}|9990000034"
    response = api.post("/fhir/", bundle("transaction", condition_resource(patient=reference)), token=sender_token)
    assert response.status_code == 422
    [issue] = [issue for issue in errors(response) if issue["code"] == "not-found"]
    assert issue["expression"] == ["Bundle.entry[0].resource.subject"]
    assert "9990000034" in issue["diagnostics"] and "matches nothing" in issue["diagnostics"]
    assert not record.Condition.objects.exists()


@pytest.mark.hazard("H-06")
def test_a_sender_identifier_resolves_on_that_senders_own_patient_only(api, sender_token, sender, gp_practice):
    """An identifier other than the NHS number is the sender's own (a hospital number): it reaches what this
    organisation sent, never another organisation's patient with the same number."""
    import_json(with_mrn(patient_resource("p1", nhs_number=NHS), "H123"), sender)
    import_json(with_mrn(patient_resource("gp-z", nhs_number=OTHER_NHS), "H999"), gp_practice)
    response = api.post(
        "/fhir/Condition", condition_resource(patient=f"Patient?identifier={MRN}|H123"), token=sender_token
    )
    assert response.status_code == 201, response.content
    assert record.Condition.objects.get().patient.nhs_number == NHS
    elsewhere = api.post(
        "/fhir/Condition", condition_resource("c2", patient=f"Patient?identifier={MRN}|H999"), token=sender_token
    )
    assert elsewhere.status_code == 422 and errors(elsewhere)[0]["code"] == "not-found"
    assert not conditions_of(OTHER_NHS).exists()


@pytest.mark.hazard("H-06")
def test_the_latest_version_decides_what_an_identifier_matches(sender):
    import_json(with_mrn(patient_resource("p1", nhs_number=NHS), "H123"), sender)
    import_json(with_mrn(patient_resource("p1", nhs_number=NHS), "H124"), sender)  # the number was corrected
    [old] = import_json(condition_resource(patient=f"Patient?identifier={MRN}|H123"), sender).outcomes
    assert old.status == "rejected" and old.issues[0].code == "not-found"
    [new] = import_json(condition_resource(patient=f"Patient?identifier={MRN}|H124"), sender).outcomes
    assert new.status == "created", new.issues


@pytest.mark.hazard("H-06")
def test_several_matches_are_refused_412_never_guessed(api, sender_token, sender):
    import_json(with_mrn(patient_resource("p1", nhs_number=NHS), "H123"), sender)
    import_json(with_mrn(patient_resource("p2", nhs_number=OTHER_NHS), "H123"), sender)
    reference = f"Patient?identifier={MRN}|H123"
    response = api.post("/fhir/", bundle("transaction", condition_resource(patient=reference)), token=sender_token)
    assert response.status_code == 412
    [issue] = [issue for issue in errors(response) if issue["code"] == "multiple-matches"]
    assert issue["expression"] == ["Bundle.entry[0].resource.subject"]
    assert "Patient/p1" in issue["diagnostics"] and "Patient/p2" in issue["diagnostics"]
    batch = api.post("/fhir/", bundle("batch", condition_resource(patient=reference)), token=sender_token)
    assert batch.status_code == 200
    assert body(batch)["entry"][0]["response"]["status"] == "412 Precondition Failed"
    assert not record.Condition.objects.exists()


@pytest.mark.hazard("H-06")
@pytest.mark.parametrize(
    ("reference", "code", "named"),
    [
        ("Patient?name=Smith", "not-supported", "name"),
        (f"Patient?identifier={NHS_NUMBER}|{NHS}&birthdate=1970-01-01", "not-supported", "birthdate"),
        (f"Patient?identifier:of-type={NHS_NUMBER}|{NHS}", "not-supported", "identifier:of-type"),
        (f"Patient?identifier={NHS_NUMBER}|{NHS}&identifier={MRN}|H1", "not-supported", "more than one identifier"),
        (f"Patient?identifier={NHS_NUMBER}|{NHS},{NHS_NUMBER}|{OTHER_NHS}", "not-supported", "several identifiers"),
        ("Patient?_format=json", "required", "no identifier"),
    ],
)
def test_a_search_other_than_one_identifier_is_not_supported_naming_it(sender, known, reference, code, named):
    [outcome] = import_json(condition_resource(patient=reference), sender).outcomes
    assert outcome.status == "rejected"
    [issue] = outcome.issues
    assert (issue.code, issue.expression) == (code, "Condition.subject")
    assert named in issue.diagnostics
    assert not record.Condition.objects.exists()


@pytest.mark.hazard("H-06")
def test_a_reference_naming_two_patients_is_refused(sender, known):
    """A reference whose id says one patient and whose NHS number identifier says another joins neither."""
    import_json(patient_resource("p1", nhs_number=OTHER_NHS), sender)
    condition = condition_resource()
    condition["subject"]["identifier"] = {"system": NHS_NUMBER, "value": NHS}
    [outcome] = import_json(condition, sender).outcomes
    assert outcome.status == "rejected" and outcome.issues[0].code == "business-rule"
    assert "names two patients" in outcome.issues[0].diagnostics
    assert not record.Condition.objects.exists()


@pytest.mark.hazard("H-06")
def test_other_types_resolve_on_the_senders_identifiers(sender, known):
    """A practitioner named by identifier gives the name the sender's Practitioner carries."""
    practitioner = {
        "resourceType": "Practitioner",
        "id": "pr1",
        "identifier": [{"system": "https://fhir.nhs.uk/Id/sds-user-id", "value": "555123"}],
        "name": [{"family": "Rastall", "given": ["Paul"], "prefix": ["Dr"]}],
    }
    import_json(practitioner, sender)
    episode = {
        "resourceType": "EpisodeOfCare",
        "id": "e1",
        "status": "active",
        "patient": {"reference": BY_NHS},
        "careManager": {"reference": "Practitioner?identifier=https://fhir.nhs.uk/Id/sds-user-id|555123"},
        "period": {"start": "2024-01-02"},
    }
    [outcome] = import_json(episode, sender).outcomes
    assert outcome.status == "created", outcome.issues
    event = record.CareEvent.objects.get()
    assert (event.patient, event.practitioner) == (known, "Dr Paul Rastall")
    stored = ReceivedResource.objects.get(resource_type="EpisodeOfCare")
    assert stored.references["Practitioner?identifier=https://fhir.nhs.uk/Id/sds-user-id|555123"] == "Practitioner/pr1"


@pytest.mark.hazard("H-06")
def test_an_ods_code_names_the_organisation(sender, gp_practice):
    patient = patient_resource(
        generalPractitioner=[{"reference": f"Organization?identifier={ODS_CODE}|{gp_practice.ods_code}"}]
    )
    [outcome] = import_json(patient, sender).outcomes
    assert outcome.status == "created", outcome.issues
    assert record.SourceDemographics.objects.get(organisation=sender).registered_gp == gp_practice


@pytest.mark.hazard("H-06")
def test_a_conditional_reference_is_read_back_as_a_reference_to_the_patient(
    api, sender, known, care_team, reader_token
):
    """Kept as sent (the conditional text), and read back as carerecord's reference to the patient it named."""
    import_json(condition_resource(patient=BY_NHS), sender)
    stored = ReceivedResource.objects.get(resource_type="Condition")
    assert stored.json["subject"] == {"reference": BY_NHS}
    assert stored.references == {BY_NHS: BY_NHS}
    factories.InvolvementFactory(patient=known, care_team=care_team)
    read = api.get(f"/fhir/Condition/{record.Condition.objects.get().pk}", token=reader_token)
    assert read.status_code == 200, read.content
    assert body(read)["subject"] == {"reference": f"Patient/{known.pk}"}


# --- conditional create: ifNoneExist and If-None-Exist ---


@pytest.mark.hazard("H-05", "H-06")
def test_if_none_exist_matching_a_patient_creates_nothing_and_its_entries_join_that_patient(
    api, sender_token, sender, known
):
    """One match: the Patient is not created nor changed (no copy of its demographics from this sender), the
    entry answers 200 with the patient's location, and the bundle's references to it mean that patient."""
    patient = patient_resource(nhs_number=NHS, family="Differentname")
    sent = bundle_of(
        "transaction",
        entry(
            patient,
            full_url="urn:uuid:11111111-1111-4111-8111-111111111111",
            if_none_exist=f"identifier={NHS_NUMBER}|{NHS}",
        ),
        entry(condition_resource(patient="urn:uuid:11111111-1111-4111-8111-111111111111")),
        entry(condition_resource("c2", patient="Patient/p1")),  # its id means the patient it matched, too
    )
    response = api.post("/fhir/", sent, token=sender_token)
    assert response.status_code == 200, response.content
    first, second, third = body(response)["entry"]
    assert first["response"]["status"] == "200 OK"
    assert first["response"]["location"] == f"Patient/{known.pk}"
    assert "nothing was created or changed" in first["response"]["outcome"]["issue"][0]["diagnostics"]
    assert second["response"]["status"] == third["response"]["status"] == "201 Created"
    known.refresh_from_db()
    assert known.family_name == "Rightperson"
    assert not record.SourceDemographics.objects.filter(organisation=sender).exists()
    assert not record.SourcePatientId.objects.filter(organisation=sender).exists()
    assert set(record.Condition.objects.values_list("patient", flat=True)) == {known.pk}
    assert not ReceivedResource.objects.filter(organisation=sender, resource_type="Patient").exists()
    kept = ReceivedResource.objects.get(resource_type="Condition", resource_id="c1")
    assert kept.references == {"urn:uuid:11111111-1111-4111-8111-111111111111": BY_NHS}


@pytest.mark.hazard("H-05")
def test_if_none_exist_without_a_match_creates_and_says_so(api, sender_token):
    sent = bundle_of("batch", entry(patient_resource(), if_none_exist=f"Patient?identifier={NHS_NUMBER}|{NHS}"))
    response = api.post("/fhir/", sent, token=sender_token)
    [answer] = body(response)["entry"]
    assert answer["response"]["status"] == "201 Created"
    assert "no match, so it is imported" in answer["response"]["outcome"]["issue"][0]["diagnostics"]
    assert record.Patient.objects.get().nhs_number == NHS


@pytest.mark.hazard("H-05")
def test_if_none_exist_never_duplicates_a_resource_sent_under_another_id(api, sender_token, sender, known):
    """The classic duplicate: a sender without the first id re-sends a record under a new one. ifNoneExist on its
    identifier finds the first, so the record keeps one condition."""
    identifier = {"system": "https://trust.example.nhs.uk/Id/problem", "value": "PR-1"}
    first = api.post(
        "/fhir/Condition", condition_resource("c1", patient=BY_NHS, identifier=[identifier]), token=sender_token
    )
    assert first.status_code == 201
    again = condition_resource("c-new", patient=BY_NHS, identifier=[identifier], onsetDateTime="2021-01-01")
    condition = f"identifier={identifier['system']}|{identifier['value']}"
    response = api.post("/fhir/Condition", again, token=sender_token, HTTP_IF_NONE_EXIST=condition)
    assert response.status_code == 200, response.content
    [only] = record.Condition.objects.all()
    assert response["Location"] == f"Condition/{only.pk}"
    assert only.source_id == "Condition/c1" and only.effective_at.year == 2020  # unchanged
    assert "matched" in issues(response)[1]["diagnostics"]


@pytest.mark.hazard("H-05")
def test_if_none_exist_matching_several_is_412(api, sender_token, sender, known):
    identifier = {"system": "https://trust.example.nhs.uk/Id/problem", "value": "PR-1"}
    for resource_id in ("c1", "c2"):
        import_json(condition_resource(resource_id, patient=BY_NHS, identifier=[identifier]), sender)
    again = condition_resource("c3", patient=BY_NHS, identifier=[identifier])
    sent = bundle_of("transaction", entry(again, if_none_exist=f"identifier={identifier['system']}|PR-1"))
    response = api.post("/fhir/", sent, token=sender_token)
    assert response.status_code == 412
    [issue] = [issue for issue in errors(response) if issue["code"] == "multiple-matches"]
    assert issue["expression"] == ["Bundle.entry[0].request.ifNoneExist"]
    assert record.Condition.objects.count() == 2


@pytest.mark.hazard("H-05")
@pytest.mark.parametrize(
    ("if_none_exist", "method", "code"),
    [
        ("name=Smith", "POST", "not-supported"),
        (f"Condition?identifier={NHS_NUMBER}|{NHS}", "POST", "invalid"),  # a search for another type
        (f"identifier={NHS_NUMBER}|{NHS}", "PUT", "invalid"),  # ifNoneExist is for a create
    ],
)
def test_an_if_none_exist_carerecord_cannot_run_is_refused_clearly(api, sender_token, if_none_exist, method, code):
    sent = bundle_of("batch", entry(patient_resource(), method=method, url="Patient/p1", if_none_exist=if_none_exist))
    [answer] = body(api.post("/fhir/", sent, token=sender_token))["entry"]
    [issue] = answer["response"]["outcome"]["issue"]
    assert (issue["code"], issue["expression"]) == (code, ["Bundle.entry[0].request.ifNoneExist"])
    assert not record.Patient.objects.exists()


# --- conditional update: PUT Type?identifier= ---


@pytest.mark.hazard("H-06")
def test_a_conditional_put_updates_the_senders_copy_of_that_patient(api, sender_token, sender):
    api.post("/fhir/Patient", patient_resource("p1", nhs_number=NHS), token=sender_token)
    changed = patient_resource(nhs_number=NHS, family="Newname")
    del changed["id"]
    response = api.put(f"/fhir/Patient?identifier={NHS_NUMBER}|{NHS}", changed, token=sender_token)
    assert response.status_code == 200, response.content
    assert issues(response)[0]["diagnostics"] == "Patient/p1: updated"
    copy = record.SourceDemographics.objects.get(organisation=sender)
    assert (copy.family_name, copy.resource_id) == ("Newname", "Patient/p1")
    assert list(record.SourcePatientId.objects.values_list("resource_id", flat=True)) == ["Patient/p1"]
    assert record.Patient.objects.get().family_name == "Newname"


@pytest.mark.hazard("H-06")
def test_a_conditional_put_never_bypasses_the_demographics_precedence(api, sender_token, sender, known, gp_practice):
    """The registered practice's copy stays the master view: a partner's conditional update changes its own copy."""
    known.registered_gp = gp_practice
    known.save()
    registered = patient_resource("gp-a", nhs_number=NHS, family="Rightperson")
    registered["generalPractitioner"] = [{"identifier": {"system": ODS_CODE, "value": gp_practice.ods_code}}]
    import_json(registered, gp_practice)
    changed = patient_resource(nhs_number=NHS, family="Misspelt")
    del changed["id"]
    response = api.put(f"/fhir/Patient?identifier={NHS_NUMBER}|{NHS}", changed, token=sender_token)
    assert response.status_code == 200, response.content
    known.refresh_from_db()
    assert known.family_name == "Rightperson"
    assert record.SourceDemographics.objects.get(organisation=sender).family_name == "Misspelt"


@pytest.mark.hazard("H-06")
def test_a_conditional_put_with_no_match_creates(api, sender_token):
    resource = patient_resource(nhs_number=NHS)
    del resource["id"]
    response = api.put(f"/fhir/Patient?identifier={NHS_NUMBER}|{NHS}", resource, token=sender_token)
    assert response.status_code == 201, response.content
    assert record.Patient.objects.get().nhs_number == NHS


@pytest.mark.hazard("H-06")
def test_a_conditional_put_must_be_the_patient_it_names(api, sender_token, sender, known):
    """A body with another NHS number (or another id than the one found) is refused: the update would land on one
    patient with another's demographics."""
    api.post("/fhir/Patient", patient_resource("p1", nhs_number=NHS), token=sender_token)
    other = patient_resource(nhs_number=OTHER_NHS, family="Else")
    del other["id"]
    response = api.put(f"/fhir/Patient?identifier={NHS_NUMBER}|{NHS}", other, token=sender_token)
    assert response.status_code == 400
    assert errors(response)[0]["expression"] == ["Patient.identifier"]
    wrong_id = patient_resource("p9", nhs_number=NHS, family="Else")
    response = api.put(f"/fhir/Patient?identifier={NHS_NUMBER}|{NHS}", wrong_id, token=sender_token)
    assert response.status_code == 400 and errors(response)[0]["expression"] == ["Patient.id"]
    assert record.SourceDemographics.objects.get(organisation=sender).family_name == "Testperson"
    assert not record.SourcePatientId.objects.filter(resource_id="Patient/p9").exists()


@pytest.mark.hazard("H-06")
def test_a_bundle_put_entry_with_a_conditional_url_is_a_conditional_update(api, sender_token, sender):
    import_json(with_mrn(patient_resource("p1", nhs_number=NHS), "H123"), sender)
    changed = with_mrn(patient_resource(nhs_number=NHS, family="Newname"), "H123")
    del changed["id"]
    sent = bundle_of("transaction", entry(changed, method="PUT", url=f"Patient?identifier={MRN}|H123"))
    response = api.post("/fhir/", sent, token=sender_token)
    assert response.status_code == 200, response.content
    assert body(response)["entry"][0]["response"]["status"] == "200 OK"
    assert record.SourceDemographics.objects.get(organisation=sender).family_name == "Newname"
    assert record.SourcePatientId.objects.filter(organisation=sender).count() == 1


@pytest.mark.hazard("H-06")
def test_a_conditional_update_matching_several_is_412(api, sender_token, sender):
    import_json(with_mrn(patient_resource("p1", nhs_number=NHS), "H123"), sender)
    import_json(with_mrn(patient_resource("p2", nhs_number=OTHER_NHS), "H123"), sender)
    changed = with_mrn(patient_resource(nhs_number=NHS, family="Newname"), "H123")
    del changed["id"]
    response = api.put(f"/fhir/Patient?identifier={MRN}|H123", changed, token=sender_token)
    assert response.status_code == 412
    assert errors(response)[0]["code"] == "multiple-matches"
    assert set(record.SourceDemographics.objects.values_list("family_name", flat=True)) == {"Testperson"}


@pytest.mark.hazard("H-05")
def test_a_conditional_update_of_a_condition_updates_the_one_it_finds(api, sender_token, sender, known):
    identifier = {"system": "https://trust.example.nhs.uk/Id/problem", "value": "PR-1"}
    import_json(condition_resource("c1", patient=BY_NHS, identifier=[identifier]), sender)
    changed = condition_resource(patient=BY_NHS, identifier=[identifier], onsetDateTime="2019-05-05")
    del changed["id"]
    response = api.put(f"/fhir/Condition?identifier={identifier['system']}|PR-1", changed, token=sender_token)
    assert response.status_code == 200, response.content
    [only] = record.Condition.objects.all()
    assert only.source_id == "Condition/c1" and only.effective_at.year == 2019


def test_a_put_to_a_type_needs_an_id_or_a_search(api, sender_token):
    response = api.put("/fhir/Patient", patient_resource(), token=sender_token)
    assert response.status_code == 400 and issues(response)[0]["code"] == "required"
    assert not record.Patient.objects.exists()


def test_the_capability_statement_declares_conditional_create_and_update(client):
    statement = client.get("/fhir/metadata").json()
    patient = next(r for r in statement["rest"][0]["resource"] if r["type"] == "Patient")
    assert patient["conditionalCreate"] is True and patient["conditionalUpdate"] is True
    assert "local" in patient["referencePolicy"]


@pytest.mark.hazard("H-05")
def test_if_none_exist_is_read_from_xml_too(api, sender_token, sender, known):
    body_xml = f"""<Bundle xmlns="http://hl7.org/fhir"><type value="batch"/>
      <entry><fullUrl value="urn:uuid:22222222-2222-4222-8222-222222222222"/><resource><Patient>
        <identifier><system value="{NHS_NUMBER}"/><value value="{NHS}"/></identifier>
        <name><family value="Xmlname"/></name><birthDate value="1970-01-01"/></Patient></resource>
        <request><method value="POST"/><url value="Patient"/>
          <ifNoneExist value="identifier={NHS_NUMBER}|{NHS}"/></request></entry>
    </Bundle>""".encode()
    response = api.post("/fhir/", body_xml, token=sender_token, content_type="application/fhir+xml")
    assert response.status_code == 200, response.content
    assert b"200 OK" in response.content and f"Patient/{known.pk}".encode() in response.content
    assert not record.SourceDemographics.objects.filter(organisation=sender).exists()
