"""Reading the record out: the pages' access decision, sharing filter and audit, as FHIR R4B resources."""

import json

import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.patient import Patient
from lxml import etree

from audit.models import AccessEvent
from directory.actions import create_api_token
from sharing.actions import break_glass
from tests import factories

pytestmark = pytest.mark.django_db


def body(response):
    return json.loads(response.content)


def test_metadata_is_public_and_valid(client):
    response = client.get("/fhir/metadata")
    assert response.status_code == 200
    statement = CapabilityStatement.model_validate(body(response))
    types = {resource.type for resource in statement.rest[0].resource}
    assert {"Patient", "Condition", "Observation", "DiagnosticReport", "CareTeam"} <= types


def test_a_clinician_reads_the_patient_with_one_audit_row(api, reader_token, patient):
    response = api.get(f"/fhir/Patient/{patient.pk}", token=reader_token)
    assert response.status_code == 200
    resource = Patient.model_validate(body(response))
    assert resource.identifier[0].value == patient.nhs_number and resource.name[0].family == "Testperson"
    [event] = AccessEvent.objects.all()
    assert (event.page, event.outcome, event.patient_id) == ("fhir:Patient", "allowed", patient.pk)


def test_a_session_reads_too_and_xml_on_request(client, clinician, patient):
    client.force_login(clinician)
    response = client.get(f"/fhir/Patient/{patient.pk}?_format=xml")
    assert response.status_code == 200 and response["Content-Type"].startswith("application/fhir+xml")
    assert Patient.model_validate_xml(response.content).id == str(patient.pk)


@pytest.mark.hazard("H-03")
def test_refused_and_unknown_look_the_same_and_are_both_audited(api, outsider, patient):
    _, secret = create_api_token(by=None, name="outsider", user=outsider)
    refused = api.get(f"/fhir/Patient/{patient.pk}", token=secret)
    unknown = api.get("/fhir/Patient/00000000-0000-4000-8000-000000000000", token=secret)
    assert refused.status_code == unknown.status_code == 403
    assert refused.content == unknown.content
    assert patient.nhs_number not in refused.content.decode()
    assert list(AccessEvent.objects.values_list("outcome", flat=True)) == ["refused", "refused"]


def test_no_credential_is_401_and_an_organisation_token_cannot_read(api, sender_token, patient):
    assert api.get(f"/fhir/Patient/{patient.pk}").status_code == 401
    assert api.get(f"/fhir/Patient/{patient.pk}", token=sender_token).status_code == 403
    assert not AccessEvent.objects.exists()


def test_search_by_type_returns_what_the_page_would_show(api, reader_token, patient, full_record, other_organisation):
    factories.ConditionFactory(patient=patient, source_organisation=other_organisation, name="Secret", sensitive=True)
    factories.ConditionFactory(
        patient=patient, source_organisation=other_organisation, name="Wrong", entered_in_error=True
    )
    response = api.get(f"/fhir/Condition?patient={patient.pk}", token=reader_token)
    assert response.status_code == 200
    bundle = Bundle.model_validate(body(response))
    assert bundle.total == 1
    assert [e.resource.code.text for e in bundle.entry] == ["Type 2 diabetes mellitus"]
    assert bundle.entry[0].resource.meta.tag[0].code == other_organisation.ods_code
    [event] = AccessEvent.objects.all()
    assert event.page == "fhir:Condition" and event.outcome == "allowed"


@pytest.mark.hazard("H-11")
def test_the_source_organisation_sees_its_own_sensitive_entries(api, patient, other_organisation):
    factories.ConditionFactory(patient=patient, source_organisation=other_organisation, name="Secret", sensitive=True)
    reader = factories.ProfessionalFactory(organisation=other_organisation).user
    break_glass(by=reader, patient=patient, reason_code="emergency-treatment")
    _, secret = create_api_token(by=None, name="own", user=reader)
    bundle = Bundle.model_validate(body(api.get(f"/fhir/Condition?patient={patient.pk}", token=secret)))
    assert [e.resource.code.text for e in bundle.entry] == ["Secret"]
    assert bundle.entry[0].resource.meta.security[0].code == "R"


def test_pages_link_to_the_next(api, reader_token, patient, other_organisation):
    for n in range(5):
        factories.AllergyFactory(patient=patient, source_organisation=other_organisation, substance=f"Substance {n}")
    first = Bundle.model_validate(
        body(api.get(f"/fhir/AllergyIntolerance?patient={patient.pk}&_count=2", token=reader_token))
    )
    assert first.total == 5 and len(first.entry) == 2
    links = {link.relation: link.url for link in first.link}
    assert "_offset=2" in links["next"] and "previous" not in links
    seen = [e.resource.code.text for e in first.entry]
    url = links["next"]
    while url:
        page = Bundle.model_validate(body(api.get(url.removeprefix("http://testserver"), token=reader_token)))
        seen += [e.resource.code.text for e in page.entry]
        url = next((link.url for link in page.link if link.relation == "next"), None)
    assert sorted(seen) == [f"Substance {n}" for n in range(5)]
    assert AccessEvent.objects.count() == 3  # one per request


@pytest.mark.hazard("H-03")
def test_a_refused_search_returns_nothing(api, clinician_other_org, patient, full_record):
    _, secret = create_api_token(by=None, name="other", user=clinician_other_org)
    response = api.get(f"/fhir/Condition?patient={patient.pk}", token=secret)
    assert response.status_code == 403 and "diabetes" not in response.content.decode()
    assert AccessEvent.objects.get().outcome == "refused"


def test_everything_lists_the_patient_then_every_visible_item(api, reader_token, patient, full_record):
    response = api.get(f"/fhir/Patient/{patient.pk}/$everything", token=reader_token)
    bundle = Bundle.model_validate(body(response))
    types = [entry.resource.get_resource_type() for entry in bundle.entry]
    assert types[0] == "Patient"
    assert {
        "CareTeam",
        "RelatedPerson",
        "Appointment",
        "Condition",
        "MedicationStatement",
        "Flag",
        "AllergyIntolerance",
        "DiagnosticReport",
        "Observation",
        "DocumentReference",
        "CarePlan",
        "Encounter",
    } <= set(types)
    assert bundle.total == len(types)
    report = next(e.resource for e in bundle.entry if e.resource.get_resource_type() == "DiagnosticReport")
    observation = next(e.resource for e in bundle.entry if e.resource.get_resource_type() == "Observation")
    assert report.result[0].reference == f"Observation/{observation.id}"
    assert AccessEvent.objects.get().page == "fhir:everything"
    paged = Bundle.model_validate(
        body(api.get(f"/fhir/Patient/{patient.pk}/$everything?_count=4&_offset=4", token=reader_token))
    )
    assert [e.resource.id for e in paged.entry] == [e.resource.id for e in bundle.entry[4:8]]


def test_read_one_entry_by_id(api, reader_token, patient, full_record, outsider):
    condition = next(entry for model, entry in full_record.items() if model.__name__ == "Condition")
    response = api.get(f"/fhir/Condition/{condition.pk}", token=reader_token)
    assert response.status_code == 200 and body(response)["code"]["text"] == "Type 2 diabetes mellitus"
    _, secret = create_api_token(by=None, name="outsider", user=outsider)
    assert api.get(f"/fhir/Condition/{condition.pk}", token=secret).status_code == 403
    assert api.get("/fhir/Condition/999999", token=reader_token).status_code == 403
    assert list(AccessEvent.objects.values_list("outcome", flat=True).order_by("at")) == [
        "allowed",
        "refused",
        "refused",
    ]


@pytest.mark.hazard("H-06")
def test_patient_search_by_nhs_number_for_any_active_professional(api, clinician_other_org, patient, no_profile_user):
    _, secret = create_api_token(by=None, name="other", user=clinician_other_org)
    url = f"/fhir/Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|{patient.nhs_number}"
    bundle = Bundle.model_validate(body(api.get(url, token=secret)))
    assert bundle.total == 1 and bundle.entry[0].resource.id == str(patient.pk)
    event = AccessEvent.objects.get()
    assert (event.page, event.patient_id) == ("search:fhir-identifier", patient.pk)
    assert patient.nhs_number not in event.path  # the path is logged without the query
    _, nobody = create_api_token(by=None, name="nobody", user=no_profile_user)
    assert api.get(url, token=nobody).status_code == 403


@pytest.mark.hazard("H-11")
def test_patient_search_by_post_keeps_the_nhs_number_out_of_the_url(client, clinician, patient):
    client.force_login(clinician)
    response = client.post(
        "/fhir/Patient/_search", {"identifier": f"https://fhir.nhs.uk/Id/nhs-number|{patient.nhs_number}"}
    )
    assert Bundle.model_validate(body(response)).total == 1


def test_unknown_types_and_missing_patient_parameter(api, reader_token):
    assert api.get("/fhir/QuestionnaireResponse?patient=x", token=reader_token).status_code == 404
    assert api.get("/fhir/Condition", token=reader_token).status_code == 400


def test_xml_searchset(api, reader_token, patient, full_record):
    response = api.get(f"/fhir/Condition?patient={patient.pk}", token=reader_token, HTTP_ACCEPT="application/fhir+xml")
    root = etree.fromstring(response.content)
    assert etree.QName(root).localname == "Bundle"
    Bundle.model_validate_xml(response.content)


# Finding 9: bad input is never a 500.


def test_finding_9_a_superscript_digit_id_is_refused_like_any_unknown_id(api, reader_token):
    """ "²".isdigit() is True, so GET /fhir/Condition/%C2%B2 reached int("²") and a 500."""
    response = api.get("/fhir/Condition/%C2%B2", token=reader_token)
    assert response.status_code == 403


@pytest.mark.parametrize("resource_id", ["٣", "9" * 30, "-1", "1.0"])
def test_ids_that_are_not_ours_are_refused(api, reader_token, resource_id):
    assert api.get(f"/fhir/Observation/{resource_id}", token=reader_token).status_code == 403


@pytest.mark.hazard("H-06")
def test_finding_9_an_nhs_number_of_other_digits_is_a_400_naming_the_identifier(api, reader_token):
    response = api.get("/fhir/Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|٩٩٩٠٠٠٠٠١٨", token=reader_token)
    assert response.status_code == 400
    assert body(response)["issue"][0]["expression"] == ["identifier"]


def test_a_stored_text_xml_cannot_carry_is_served_as_xml_all_the_same(api, reader_token, patient):
    """PostgreSQL and SQLite keep a \\x1f a form or an older import let in; XML 1.0 cannot carry it."""
    patient.family_name = "Test\x1fperson"
    patient.save()
    response = api.get(f"/fhir/Patient/{patient.pk}", token=reader_token, HTTP_ACCEPT="application/fhir+xml")
    assert response.status_code == 200
    assert Patient.model_validate_xml(response.content).name[0].family == "Test\ufffdperson"


def test_reading_a_type_we_do_not_hold_is_a_404_before_any_access_decision(api, reader_token):
    """Found by fuzzing: GET /fhir/<5,000 characters>/x was decided and audited as page "fhir:<type>:read",
    longer than the audit column (a 500)."""
    assert api.get(f"/fhir/{'x' * 5000}/1", token=reader_token).status_code == 404
    assert api.get("/fhir/QuestionnaireResponse/1", token=reader_token).status_code == 404
    assert not AccessEvent.objects.exists()
