"""Provenance (H-17): one per submission that sent a version of a resource on the page, from what carerecord
recorded as it received it (fhirapi.models.Submission), targeting only the page's resources by versioned
reference: never another patient's, never an entry the reader may not see (H-11), never a version held for
another patient (H-06). Every way in records its submission."""

import json

import pytest
from django.core.management import call_command
from fhir.resources.R4B.provenance import Provenance

from directory.actions import add_team_member, create_api_token
from fhirapi import read
from fhirapi.ingest import Channel, ingest
from fhirapi.models import ReceivedResource, Submission
from fhirapi.parse import read as parse
from fhirapi.provenance import revincluded
from fhirapi.references import sender_system
from fhirapi.systems import ODS_CODE
from patients import models as record
from sharing.access import decide
from tests import factories
from tests.sharing.test_coverage import upheld_objection

from .conftest import bundle, condition_resource, import_json, patient_resource
from .test_messaging import URL as PROCESS_MESSAGE
from .test_messaging import pathology_message

pytestmark = pytest.mark.django_db

PARTICIPANT_TYPE = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"
DATA_OPERATION = "http://terminology.hl7.org/CodeSystem/v3-DataOperation"
OTHER_NHS_NUMBER = "9990000026"
BUNDLE_SYSTEM = "https://trust.example/bundles"


@pytest.fixture
def ours(sender, patient):
    """The reader's patient, as the sender knows them (Patient/p1)."""
    import_json(patient_resource(nhs_number=patient.nhs_number, family=patient.family_name), sender)
    return patient


@pytest.fixture
def feed(sender):
    """The sender's token and what it is called."""
    _, secret = create_api_token(by=None, name="EPR feed", organisation=sender)
    return secret


def send(api, token, resource, path="/fhir/", method="post"):
    response = api.post(path, resource, token=token, method=method)
    assert response.status_code in (200, 201), response.content
    return response


def transaction(*resources, value="b-1"):
    sent = bundle("transaction", *resources)
    sent["identifier"] = {"system": BUNDLE_SYSTEM, "value": value}
    return sent


def page(user, patient, resource_type="Condition"):
    """A page of a type search as the read API builds it: (type, item) pairs and their resources."""
    decision = decide(user, patient)
    lists = [(resource_type, queryset) for queryset in read.resources_of(resource_type, patient, decision)]
    items = read.page_of(lists, offset=0, count=read.MAX_COUNT).items
    return items, read.resources(items, patient)


def provenances(user, patient, resource_type="Condition"):
    items, resources = page(user, patient, resource_type)
    return [json.loads(p.model_dump_json()) for p in revincluded(items, resources, patient)]


def through_the_api():
    """The submissions made through the API (the `ours` fixture's import has no channel), oldest first."""
    return list(Submission.objects.exclude(endpoint="").order_by("received_at"))


def as_sent(patient):
    return patient_resource(nhs_number=patient.nhs_number, family=patient.family_name)


def condition_id(source_id="Condition/c1"):
    return record.Condition.objects.get(source_id=source_id).pk


def coding(concept):
    return [(c["system"], c["code"]) for c in concept["coding"]]


# Every way in records its submission


def test_a_transaction_records_who_sent_it_when_and_as_what(api, feed, sender, ours):
    send(api, feed, transaction(condition_resource(), value="b-42"))
    [submission] = through_the_api()
    assert submission.organisation == sender and submission.token.name == "EPR feed"
    assert submission.actor.startswith(f"api-token:{submission.token.pk}:") and submission.endpoint == "POST /fhir/"
    assert submission.bundle_type == "transaction" and submission.bundle_id == f"{BUNDLE_SYSTEM}|b-42"
    assert submission.request_id and submission.message_id == ""
    [version] = ReceivedResource.objects.filter(resource_type="Condition")
    assert version.submission == submission and version.received_at == submission.received_at


def test_a_single_resource_a_put_and_a_bundle_id_record_theirs(api, feed, ours):
    send(api, feed, condition_resource(), path="/fhir/Condition")
    send(api, feed, condition_resource(name="Type 1 diabetes mellitus"), path="/fhir/Condition/c1", method="put")
    sent = bundle("batch", condition_resource("c2"))
    sent["id"] = "sender-bundle-7"
    send(api, feed, sent)
    posted, put, batch = through_the_api()
    assert (posted.endpoint, posted.bundle_type, posted.bundle_id) == ("POST /fhir/Condition", "", "")
    assert (put.endpoint, put.bundle_type) == ("PUT /fhir/Condition/c1", "")
    assert (batch.bundle_type, batch.bundle_id) == ("batch", "Bundle/sender-bundle-7")
    assert [v.submission for v in ReceivedResource.objects.filter(resource_id="c1").order_by("version")] == [
        posted,
        put,
    ]


def test_a_message_records_its_message_id_and_bundle_identifier(api, feed, sender):
    response = send(api, feed, pathology_message(), path=PROCESS_MESSAGE)
    assert json.loads(response.content)["entry"][0]["resource"]["response"]["code"] == "ok"
    submission = Submission.objects.get()
    assert submission.bundle_type == "message" and submission.endpoint == f"POST {PROCESS_MESSAGE}"
    assert submission.message_id == "urn:uuid:7f0c7c4e-1111-4c3a-9a55-000000000001"
    assert submission.bundle_id.endswith("|urn:uuid:7f0c7c4e-1111-4c3a-9a55-000000000001")
    assert {v.submission for v in ReceivedResource.objects.all()} == {submission}


def test_the_import_command_records_its_run_and_operator(tmp_path, sender, ig_officer):
    (tmp_path / "b.json").write_text(json.dumps(transaction(patient_resource(), condition_resource())))
    call_command("import_fhir", str(tmp_path), organisation=sender.ods_code, operator=ig_officer.email)
    submission = Submission.objects.get()
    assert submission.token is None and submission.endpoint == "import_fhir"
    assert submission.actor == ig_officer.email and len(submission.request_id) == 32  # the run's id


def test_a_transaction_rolled_back_records_no_submission(api, feed, ours):
    response = api.post("/fhir/", transaction(condition_resource(patient="Patient/unknown")), token=feed)
    assert response.status_code == 422, response.content
    assert not through_the_api() and not ReceivedResource.objects.filter(resource_type="Condition").exists()


# What a Provenance says


@pytest.mark.hazard("H-17")
def test_a_provenance_names_the_submission_its_sender_and_the_versioned_target(api, feed, sender, ours, clinician):
    send(api, feed, transaction(condition_resource(), value="b-1"))
    [submission] = through_the_api()
    [provenance] = provenances(clinician, ours)
    Provenance.model_validate(provenance)
    assert provenance["id"] == str(submission.pk)
    assert provenance["target"] == [{"reference": f"Condition/{condition_id()}/_history/1"}]
    assert provenance["recorded"] == submission.received_at.isoformat().replace("+00:00", "Z")
    assert "occurredDateTime" not in provenance and "occurredPeriod" not in provenance
    assert coding(provenance["activity"]) == [(DATA_OPERATION, "CREATE")]
    author, system = provenance["agent"]
    sender_reference = {"identifier": {"system": ODS_CODE, "value": sender.ods_code}, "display": sender.name}
    assert coding(author["type"]) == [(PARTICIPANT_TYPE, "author")] and author["who"] == sender_reference
    assert coding(system["type"]) == [(PARTICIPANT_TYPE, "assembler")]
    assert system["who"] == {"type": "Device", "display": "EPR feed (carerecord API token)"}
    assert system["onBehalfOf"] == sender_reference
    assert provenance["entity"] == [
        {"role": "source", "what": {"type": "Bundle", "identifier": {"system": BUNDLE_SYSTEM, "value": "b-1"}}}
    ]
    assert provenance["meta"]["source"] == sender_system(sender.ods_code)
    assert provenance["meta"]["tag"] == [{"system": ODS_CODE, "code": sender.ods_code, "display": sender.name}]


@pytest.mark.hazard("H-17")
def test_two_submissions_give_two_provenances_newest_first_each_its_own_version(api, feed, ours, clinician):
    send(api, feed, transaction(condition_resource(), value="first"))
    send(api, feed, transaction(condition_resource(name="Type 1 diabetes mellitus"), value="second"))
    second, first = provenances(clinician, ours)
    target = f"Condition/{condition_id()}/_history"
    assert second["target"] == [{"reference": f"{target}/2"}] and coding(second["activity"]) == [
        (DATA_OPERATION, "UPDATE")
    ]
    assert first["target"] == [{"reference": f"{target}/1"}] and coding(first["activity"]) == [
        (DATA_OPERATION, "CREATE")
    ]
    assert [p["entity"][0]["what"]["identifier"]["value"] for p in (second, first)] == ["second", "first"]
    assert second["recorded"] > first["recorded"]


@pytest.mark.hazard("H-17")
def test_the_same_resource_sent_again_unchanged_gives_no_second_provenance(api, feed, ours, clinician):
    send(api, feed, transaction(condition_resource(), value="first"))
    send(api, feed, transaction(condition_resource(), value="again"))  # nothing new kept
    assert len(through_the_api()) == 2
    [provenance] = provenances(clinician, ours)
    assert provenance["entity"][0]["what"]["identifier"]["value"] == "first"


@pytest.mark.hazard("H-17")
def test_a_submission_that_creates_and_updates_says_neither(api, feed, ours, clinician):
    send(api, feed, condition_resource("c1"), path="/fhir/Condition")
    send(api, feed, transaction(condition_resource("c1", name="Asthma"), condition_resource("c2", name="Gout")))
    newest, _ = provenances(clinician, ours)
    assert "activity" not in newest
    assert {t["reference"] for t in newest["target"]} == {
        f"Condition/{condition_id('Condition/c1')}/_history/2",
        f"Condition/{condition_id('Condition/c2')}/_history/1",
    }


@pytest.mark.hazard("H-17")
def test_a_message_names_its_bundle_and_a_single_resource_has_no_entity(api, feed, sender, clinician, patient):
    send(api, feed, pathology_message(patient=as_sent(patient)), path=PROCESS_MESSAGE)
    [provenance] = provenances(clinician, patient, "DiagnosticReport")
    assert provenance["entity"][0]["what"] == {
        "type": "Bundle",
        "identifier": {"system": "urn:ietf:rfc:3986", "value": "urn:uuid:7f0c7c4e-1111-4c3a-9a55-000000000001"},
    }
    assert [t["reference"] for t in provenance["target"]] == [
        f"DiagnosticReport/{record.Result.objects.get(kind=record.Result.Kind.REPORT).pk}/_history/1"
    ]
    [observation] = provenances(clinician, patient, "Observation")[:1]
    assert observation["id"] == provenance["id"] and len(observation["target"]) == 2
    import_json(condition_resource(), sender)  # no channel, no Bundle
    [single] = provenances(clinician, patient)
    assert "entity" not in single and single["agent"][1]["who"]["display"] == "Not recorded"


def test_a_message_without_a_bundle_identifier_names_its_header(api, feed, patient, clinician, sender):
    message = pathology_message(patient=as_sent(patient))
    del message["identifier"]
    send(api, feed, message, path=PROCESS_MESSAGE)
    [provenance] = provenances(clinician, patient, "DiagnosticReport")
    assert provenance["entity"][0]["what"] == {
        "type": "MessageHeader",
        "identifier": {"system": sender_system(sender.ods_code, "MessageHeader"), "value": "mh-1"},
    }


def test_a_command_names_itself_and_its_operator(tmp_path, sender, ours, clinician, ig_officer):
    (tmp_path / "c.json").write_text(json.dumps(condition_resource()))
    call_command("import_fhir", str(tmp_path), organisation=sender.ods_code, operator=ig_officer.email)
    [provenance] = provenances(clinician, ours)
    assert provenance["agent"][1]["who"]["display"] == f"manage.py import_fhir, run by {ig_officer.email}"


# Only this page, this patient, what the reader may see


@pytest.mark.hazard("H-17")
@pytest.mark.hazard("H-06")
def test_a_bundle_carrying_two_patients_names_only_this_patients_resources(api, feed, ours, clinician, care_team):
    other = factories.PatientFactory(nhs_number=OTHER_NHS_NUMBER)
    factories.InvolvementFactory(patient=other, care_team=care_team)
    send(
        api,
        feed,
        transaction(
            patient_resource("p2", nhs_number=OTHER_NHS_NUMBER, family=other.family_name),
            condition_resource("c1"),
            condition_resource("c2", patient="Patient/p2", name="Gout"),
        ),
    )
    [mine] = provenances(clinician, ours)
    [theirs] = provenances(clinician, other)
    assert mine["id"] == theirs["id"]
    assert mine["target"] == [{"reference": f"Condition/{condition_id('Condition/c1')}/_history/1"}]
    assert theirs["target"] == [{"reference": f"Condition/{condition_id('Condition/c2')}/_history/1"}]


@pytest.mark.hazard("H-17")
@pytest.mark.hazard("H-11")
def test_a_sensitive_entry_the_reader_may_not_see_is_no_target(api, feed, ours, clinician, clinician_other_org):
    restricted = {"security": [{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"}]}
    send(api, feed, transaction(condition_resource("c1"), condition_resource("c2", name="HIV", meta=restricted)))
    items, resources = page(clinician, ours)
    assert [item.source_id for _, item in items] == ["Condition/c1"]
    [provenance] = [json.loads(p.model_dump_json()) for p in revincluded(items, resources, ours)]
    assert provenance["target"] == [{"reference": f"Condition/{condition_id('Condition/c1')}/_history/1"}]
    # The sender's own staff, in a care relationship, see it: their page's Provenance names it.
    team = factories.CareTeamFactory(organisation=clinician_other_org.professional.organisation)
    factories.InvolvementFactory(patient=ours, care_team=team)
    add_team_member(by=None, team=team, professional=clinician_other_org.professional)
    [theirs] = provenances(clinician_other_org, ours)
    assert len(theirs["target"]) == 2


@pytest.mark.hazard("H-17")
@pytest.mark.hazard("H-06")
def test_a_version_held_for_another_patient_is_not_this_records(api, feed, ours, clinician):
    other = factories.PatientFactory(nhs_number=OTHER_NHS_NUMBER)
    send(api, feed, patient_resource("p2", nhs_number=OTHER_NHS_NUMBER, family=other.family_name), "/fhir/Patient")
    send(api, feed, condition_resource(patient="Patient/p2"), "/fhir/Condition")  # the wrong patient, corrected:
    send(api, feed, condition_resource(patient="Patient/p1"), "/fhir/Condition/c1", method="put")
    assert record.Condition.objects.get().patient == ours
    [provenance] = provenances(clinician, ours)
    assert provenance["target"] == [{"reference": f"Condition/{condition_id()}/_history/2"}]
    wrong = ReceivedResource.objects.get(resource_type="Condition", version=1)
    assert wrong.patient == other and str(wrong.submission_id) != provenance["id"]  # held, never given here


@pytest.mark.hazard("H-17")
def test_entries_not_received_as_fhir_and_versions_before_submissions_have_none(api, feed, sender, ours, clinician):
    factories.ConditionFactory(patient=ours, source_organisation=sender)
    send(api, feed, condition_resource(), "/fhir/Condition")
    ReceivedResource.objects.update(submission=None)  # kept before submissions were
    items, resources = page(clinician, ours)
    assert len(items) == 2
    assert revincluded(items, resources, ours) == []
    assert revincluded([], [], ours) == []


@pytest.mark.hazard("H-17")
def test_a_page_of_fifty_costs_two_queries(api, feed, ours, clinician, django_assert_max_num_queries):
    send(api, feed, transaction(*[condition_resource(f"c{n}") for n in range(30)]))
    send(api, feed, transaction(*[condition_resource(f"c{n}", name="Asthma") for n in range(20, 50)]))
    items, resources = page(clinician, ours)
    assert len(items) == 50
    with django_assert_max_num_queries(2):
        found = revincluded(items, resources, ours)
    assert [len(p.target) for p in found] == [30, 30]  # 20 updated + 10 created; 30 created


def test_a_provenance_serialises_to_xml(api, feed, ours, clinician):
    send(api, feed, transaction(condition_resource()))
    items, resources = page(clinician, ours)
    [provenance] = revincluded(items, resources, ours)
    xml = provenance.model_dump_xml()
    assert b"<Provenance" in xml and b"_history/1" in xml
    assert Provenance.model_validate_xml(xml).id == provenance.id


def test_ingest_without_a_channel_still_records_a_submission(sender, ours):
    report = ingest(parse(json.dumps(condition_resource()).encode()), organisation=sender, channel=Channel())
    assert report.submission is not None and report.submission.endpoint == ""


# Through the API: GET [base]/<Type>?patient=<id>&_revinclude=Provenance:target


def searched(api, token, path, status=200):
    response = api.get(path, token=token)
    assert response.status_code == status, response.content
    return json.loads(response.content)


def by_mode(searchset):
    modes = {"match": [], "include": []}
    for entry in searchset.get("entry", []):
        modes[entry["search"]["mode"]].append(entry["resource"])
    return modes


@pytest.mark.hazard("H-17")
def test_revinclude_gives_each_page_its_provenance_as_included(api, feed, ours, reader_token):
    send(api, feed, transaction(condition_resource("c1"), condition_resource("c2", name="Gout")))
    searchset = searched(api, reader_token, f"/fhir/Condition?patient={ours.pk}&_revinclude=Provenance:target")
    found = by_mode(searchset)
    assert searchset["total"] == 2 and len(found["match"]) == 2
    [provenance] = found["include"]
    assert provenance["resourceType"] == "Provenance" and provenance["id"] == str(through_the_api()[0].pk)
    assert {t["reference"] for t in provenance["target"]} == {f"Condition/{c['id']}/_history/1" for c in found["match"]}
    # A page of one: its Provenance names that one only.
    first = searched(api, reader_token, f"/fhir/Condition?patient={ours.pk}&_revinclude=Provenance:target&_count=1")
    [matched], [included] = by_mode(first)["match"], by_mode(first)["include"]
    assert included["target"] == [{"reference": f"Condition/{matched['id']}/_history/1"}]


@pytest.mark.hazard("H-17")
def test_revinclude_with_no_match_gives_no_provenance(api, feed, ours, reader_token):
    send(api, feed, transaction(condition_resource()))
    path = f"/fhir/Condition?patient={ours.pk}&_revinclude=Provenance:target&_id=999999"
    assert by_mode(searched(api, reader_token, path)) == {"match": [], "include": []}
    plain = searched(api, reader_token, f"/fhir/Condition?patient={ours.pk}")  # not asked for: none
    assert [e["resource"]["resourceType"] for e in plain["entry"]] == ["Condition"]


@pytest.mark.hazard("H-17")
@pytest.mark.parametrize("reader", ["outsider", "clinician_other_org"])
def test_revinclude_for_a_patient_the_reader_may_not_see_is_refused_as_unknown(request, api, feed, ours, reader):
    send(api, feed, transaction(condition_resource()))
    _, secret = create_api_token(by=None, name="viewer", user=request.getfixturevalue(reader))
    refused = searched(api, secret, f"/fhir/Condition?patient={ours.pk}&_revinclude=Provenance:target", 403)
    unknown = searched(
        api, secret, "/fhir/Condition?patient=00000000-0000-4000-8000-000000000000&_revinclude=Provenance:target", 403
    )
    assert refused == unknown and refused["issue"][0]["diagnostics"] == "Record not available."


@pytest.mark.hazard("H-17")
def test_an_opted_out_patients_other_organisations_entries_bring_no_provenance(api, feed, ours, reader_token):
    """An objection upheld leaves the reader their own organisation's entries only (sharing.access): the
    sender's entry goes, and its submission's Provenance with it."""
    send(api, feed, transaction(condition_resource()))
    path = f"/fhir/Condition?patient={ours.pk}&_revinclude=Provenance:target"
    assert len(by_mode(searched(api, reader_token, path))["include"]) == 1
    upheld_objection(ours, factories.UserFactory(is_staff=True))
    assert by_mode(searched(api, reader_token, path)) == {"match": [], "include": []}


def test_revinclude_in_xml(api, feed, ours, reader_token):
    send(api, feed, transaction(condition_resource()))
    response = api.get(
        f"/fhir/Condition?patient={ours.pk}&_revinclude=Provenance:target&_format=xml", token=reader_token
    )
    assert response.status_code == 200 and response["Content-Type"].startswith("application/fhir+xml")
    assert b"<Provenance" in response.content and b"_history/1" in response.content


@pytest.mark.hazard("H-17")
def test_the_newest_provenance_targets_the_version_a_read_serves_and_vread_gives(api, feed, ours, reader_token):
    send(api, feed, transaction(condition_resource(), value="first"))
    send(api, feed, transaction(condition_resource(name="Asthma"), value="second"))
    found = by_mode(searched(api, reader_token, f"/fhir/Condition?patient={ours.pk}&_revinclude=Provenance:target"))
    [condition] = found["match"]
    newest, older = found["include"]
    assert newest["target"] == [{"reference": f"Condition/{condition['id']}/_history/{condition['meta']['versionId']}"}]
    reference = older["target"][0]["reference"]
    old = searched(api, reader_token, f"/fhir/{reference}")
    assert old["meta"]["versionId"] == "1" and old["code"]["coding"][0]["display"] == "Type 2 diabetes mellitus"
