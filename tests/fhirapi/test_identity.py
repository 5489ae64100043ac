"""Issue 12: identity cannot silently change, and what the FHIR Patient says of restricted and deceased patients.

Each partner's Patient is kept as that partner's copy; the master view follows the precedence of
patients.demographics; an organisation's Patient id never moves to another NHS number (refused, IG told); a
restricted (S-flag) patient's contact details and support network never leave; deceased[x] is kept.
"""

import datetime
import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.patient import Patient as FhirPatient

from audit.models import AuditEvent
from audit.names import Action
from directory.models import Organisation
from fhirapi.systems import CONFIDENTIALITY, ODS_CODE
from patients import models as record
from tests import factories

from .conftest import bundle, condition_resource, import_json, patient_resource

pytestmark = pytest.mark.django_db

OTHER_NHS_NUMBER = "9990000026"
RESTRICTED = {"security": [{"system": CONFIDENTIALITY, "code": "R", "display": "restricted"}]}
UNRESTRICTED = {"security": [{"system": CONFIDENTIALITY, "code": "U", "display": "unrestricted"}]}
HOME = [{"use": "home", "line": ["12 Hidden Mews"], "city": "London", "postalCode": "N7 7ZZ"}]
PHONE = [{"system": "phone", "value": "07700 900123"}, {"system": "email", "value": "hidden@example.com"}]


def body(response):
    return json.loads(response.content)


def statuses(report):
    return [outcome.status for outcome in report.outcomes]


def related_person(resource_id="rp1", patient="Patient/p1"):
    return {
        "resourceType": "RelatedPerson",
        "id": resource_id,
        "patient": {"reference": patient},
        "relationship": [{"text": "Daughter; next of kin"}],
        "name": [{"text": "Grace Hidden"}],
        "telecom": [{"system": "phone", "value": "07700 900456"}],
    }


@pytest.fixture
def gp_practice():
    return factories.OrganisationFactory(name="Riverside Practice", kind=Organisation.Kind.GP_PRACTICE)


def from_gp(gp_practice, **extra):
    practice = {"identifier": {"system": ODS_CODE, "value": gp_practice.ods_code}}
    return patient_resource("gp-1", generalPractitioner=[practice], **extra)


# --- one master view ---


@pytest.mark.hazard("H-06")
def test_a_partners_patient_no_longer_overwrites_what_the_registered_practice_says(sender, gp_practice):
    import_json(from_gp(gp_practice, address=[{"line": ["1 Practice Road"], "postalCode": "N1 1AA"}]), gp_practice)
    hospital_copy = patient_resource(family="Misspelt", address=[{"line": ["9 Ward Lane"], "postalCode": "E1 1ZZ"}])
    assert statuses(import_json(hospital_copy, sender)) == ["updated"]  # the hospital's own copy is updated...
    patient = record.Patient.objects.get()
    # ...but the master view is the registered practice's.
    assert (patient.family_name, patient.postcode, patient.registered_gp) == ("Testperson", "N1 1AA", gp_practice)
    copies = {copy.organisation: copy for copy in patient.source_demographics.all()}
    assert (copies[sender].family_name, copies[sender].postcode) == ("Misspelt", "E1 1ZZ")
    assert copies[gp_practice].resource_id == "Patient/gp-1"


@pytest.mark.hazard("H-06")
def test_a_copy_sent_again_unchanged_leaves_the_master_view_alone_and_does_not_recompute_it(sender, gp_practice):
    """The master view changes only where a source's copy changed: the same Patient again reads the sender's copy
    once and neither recomputes nor writes the patient, whatever another source said meanwhile."""
    import_json(patient_resource(family="Hospitalname"), sender)
    import_json(from_gp(gp_practice), gp_practice)
    patient = record.Patient.objects.get()
    assert patient.family_name == "Testperson"  # the registered practice's
    with CaptureQueriesContext(connection) as queries:
        assert statuses(import_json(patient_resource(family="Hospitalname"), sender)) == ["unchanged"]
    copies_read = [q["sql"] for q in queries.captured_queries if 'FROM "patients_sourcedemographics"' in q["sql"]]
    assert len(copies_read) == 1  # the sender's copy; no recompute reading every source's
    assert not [q for q in queries.captured_queries if q["sql"].startswith('UPDATE "patients_patient"')]
    assert (record.Patient.objects.get().family_name, record.Patient.objects.get().updated_at) == (
        "Testperson",
        patient.updated_at,
    )


@pytest.mark.hazard("H-06")
def test_a_change_to_the_master_view_is_audited_by_field_not_value(sender, sender_token, api):
    api.post("/fhir/Patient", patient_resource(), token=sender_token)
    assert not AuditEvent.objects.filter(action=Action.FHIR_DEMOGRAPHICS_CHANGED).exists()  # created, not changed
    api.put("/fhir/Patient/p1", patient_resource(family="Newname", telecom=PHONE[:1]), token=sender_token)
    [event] = AuditEvent.objects.filter(action=Action.FHIR_DEMOGRAPHICS_CHANGED)
    patient = record.Patient.objects.get()
    assert (event.patient_id, event.target_type, event.target_id) == (patient.pk, "Patient", str(patient.pk))
    assert event.actor_email.startswith("api-token:") and event.detail["organisation"] == sender.ods_code
    assert set(event.detail["changed"].split(",")) == {"family_name", "phone"}
    assert "Newname" not in json.dumps(event.detail) and "07700" not in json.dumps(event.detail)


@pytest.mark.hazard("H-06")
def test_the_fhir_patient_is_the_master_view_never_a_partners_copy(
    sender, gp_practice, api, reader_token, patient, organisation
):
    import_json(from_gp(gp_practice, nhs_number=patient.nhs_number, family="Mastername"), gp_practice)
    import_json(patient_resource(nhs_number=patient.nhs_number, family="Partnercopy"), sender)
    resource = FhirPatient.model_validate(body(api.get(f"/fhir/Patient/{patient.pk}", token=reader_token)))
    assert resource.name[0].family == "Mastername"
    assert resource.generalPractitioner[0].identifier.value == gp_practice.ods_code


# --- an id never moves to another NHS number ---


@pytest.mark.hazard("H-06")
def test_re_sending_a_patient_id_with_another_nhs_number_is_refused_and_ig_are_told(sender, sender_token, api):
    api.post("/fhir/Patient", patient_resource(), token=sender_token)
    api.post("/fhir/Condition", condition_resource(), token=sender_token)
    earlier = record.Patient.objects.get()
    before = record.Patient.objects.filter(pk=earlier.pk).values().get()
    copy_before = record.SourceDemographics.objects.filter(patient=earlier).values().get()

    response = api.put(
        "/fhir/Patient/p1", patient_resource(nhs_number=OTHER_NHS_NUMBER, family="Else"), token=sender_token
    )

    assert response.status_code == 422
    [issue] = body(response)["issue"]
    assert issue["code"] == "business-rule" and issue["expression"] == ["Patient.identifier"]
    assert "never moves to another person" in issue["diagnostics"]
    # The earlier patient's record is as it was, and nobody new was made.
    assert list(record.Patient.objects.values_list("nhs_number", flat=True)) == ["9990000018"]
    assert record.Patient.objects.filter(pk=earlier.pk).values().get() == before
    assert record.SourceDemographics.objects.filter(patient=earlier).values().get() == copy_before
    assert record.SourcePatientId.objects.get(resource_id="Patient/p1").patient_id == earlier.pk
    # IG are told: an audit row in the FHIR family, naming the patient, the id and both numbers.
    [alert] = AuditEvent.objects.filter(action=Action.FHIR_IDENTITY_REFUSED)
    assert (alert.patient_id, alert.target_type, alert.actor_email[:10]) == (earlier.pk, "Patient", "api-token:")
    assert alert.detail["resource"] == "Patient/p1"
    assert (alert.detail["nhs_number_held"], alert.detail["nhs_number_sent"]) == ("9990000018", OTHER_NHS_NUMBER)
    # ...and the submission's own row names the patient it would have changed.
    submission = AuditEvent.objects.filter(action=Action.FHIR_SUBMISSION).latest("pk")
    assert submission.detail["refused_patients"] == str(earlier.pk)


@pytest.mark.hazard("H-06")
def test_a_refused_move_in_a_transaction_undoes_it_all_and_ig_are_still_told(sender):
    import_json(patient_resource(), sender)
    earlier = record.Patient.objects.get()
    moved = bundle("transaction", patient_resource(nhs_number=OTHER_NHS_NUMBER), condition_resource())
    report = import_json(moved, sender)
    assert not report.applied
    assert not record.Condition.objects.exists() and record.Patient.objects.count() == 1
    [alert] = AuditEvent.objects.filter(action=Action.FHIR_IDENTITY_REFUSED)  # written after the rollback
    assert alert.patient_id == earlier.pk


@pytest.mark.hazard("H-06")
def test_in_a_batch_nothing_sent_about_a_refused_id_lands_in_the_earlier_patients_record(sender):
    import_json(patient_resource(), sender)
    moved = bundle("batch", patient_resource(nhs_number=OTHER_NHS_NUMBER), condition_resource())
    report = import_json(moved, sender)
    assert statuses(report) == ["rejected", "rejected"]
    assert report.outcomes[1].issues[0].code == "business-rule"
    assert not record.Condition.objects.exists()


def test_another_id_for_the_same_person_and_a_new_id_for_another_are_both_fine(sender):
    import_json(patient_resource(), sender)
    assert statuses(import_json(patient_resource("p1-merged"), sender)) == ["updated"]
    assert statuses(import_json(patient_resource("p2", nhs_number=OTHER_NHS_NUMBER), sender)) == ["created"]
    assert record.Patient.objects.count() == 2
    assert not AuditEvent.objects.filter(action=Action.FHIR_IDENTITY_REFUSED).exists()


# --- restricted (S-flag) ---


@pytest.fixture
def restricted(sender, patient, full_record):
    """`patient`, flagged restricted by the sending trust, with an address, phone, email and a next of kin sent."""
    resource = patient_resource(
        nhs_number=patient.nhs_number, family=patient.family_name, meta=RESTRICTED, address=HOME, telecom=PHONE
    )
    resource["name"][0]["given"] = [patient.given_name]
    report = import_json(bundle("batch", resource, related_person()), sender)
    assert statuses(report) == ["updated", "created"]
    patient.refresh_from_db()
    return patient


@pytest.mark.hazard("H-11")
def test_a_restricted_label_flags_the_patient_and_no_contact_detail_is_kept(restricted, sender):
    assert restricted.restricted
    assert (restricted.address, restricted.postcode, restricted.phone, restricted.email) == ("", "", "", "")
    copy = restricted.source_demographics.get(organisation=sender)
    assert copy.restricted and (copy.address, copy.postcode, copy.phone, copy.email) == ("", "", "", "")


@pytest.mark.hazard("H-11")
def test_a_restricted_patients_fhir_read_has_no_address_telecom_or_contacts(api, reader_token, restricted):
    response = api.get(f"/fhir/Patient/{restricted.pk}", token=reader_token)
    resource = FhirPatient.model_validate(body(response))
    assert resource.address is None and resource.telecom is None and resource.contact is None
    assert [(label.system, label.code) for label in resource.meta.security] == [(CONFIDENTIALITY, "R")]
    for leak in ("Hidden Mews", "N7 7ZZ", "07700", "hidden@example.com", "Grace Hidden"):
        assert leak not in response.content.decode()


@pytest.mark.hazard("H-11")
def test_the_builder_leaves_out_contact_details_whatever_a_restricted_patients_row_holds(api, reader_token, patient):
    patient.restricted, patient.email = True, "still@example.com"
    patient.save()
    response = api.get(f"/fhir/Patient/{patient.pk}", token=reader_token)
    resource = FhirPatient.model_validate(body(response))
    assert resource.address is None and resource.telecom is None
    for detail in (patient.address, patient.postcode, patient.phone, patient.email):
        assert detail not in response.content.decode()


@pytest.mark.hazard("H-11")
def test_a_restricted_patients_support_network_is_not_read_searched_or_listed(api, reader_token, restricted):
    person = record.SupportPerson.objects.filter(patient=restricted).first()
    assert person is not None  # kept as sent, never given
    search = Bundle.model_validate(body(api.get(f"/fhir/RelatedPerson?patient={restricted.pk}", token=reader_token)))
    assert search.total == 0
    assert api.get(f"/fhir/RelatedPerson/{person.pk}", token=reader_token).status_code == 403
    everything = api.get(f"/fhir/Patient/{restricted.pk}/$everything?_count=200", token=reader_token)
    types = [entry.resource.get_resource_type() for entry in Bundle.model_validate(body(everything)).entry]
    assert "RelatedPerson" not in types and "Patient" in types
    for leak in ("Grace Hidden", "Bernard Testperson", "Hidden Mews", "07700"):
        assert leak not in everything.content.decode()


@pytest.mark.hazard("H-11")
def test_the_fhir_patient_search_shows_no_contact_detail_of_a_restricted_patient(client, clinician, restricted):
    client.force_login(clinician)
    identifier = f"https://fhir.nhs.uk/Id/nhs-number|{restricted.nhs_number}"
    response = client.post("/fhir/Patient/_search", {"identifier": identifier})
    searchset = Bundle.model_validate(body(response))
    [entry] = searchset.entry
    assert entry.resource.address is None and entry.resource.telecom is None


def test_an_unrestricted_label_from_the_same_source_lifts_it_and_no_label_keeps_it(sender, patient):
    resource = patient_resource(nhs_number=patient.nhs_number, meta=RESTRICTED)
    import_json(resource, sender)
    assert record.Patient.objects.get(pk=patient.pk).restricted
    import_json(patient_resource(nhs_number=patient.nhs_number, address=HOME), sender)  # no label: as it was
    assert record.Patient.objects.get(pk=patient.pk).restricted
    import_json(patient_resource(nhs_number=patient.nhs_number, meta=UNRESTRICTED, address=HOME), sender)
    lifted = record.Patient.objects.get(pk=patient.pk)
    assert not lifted.restricted and lifted.postcode == "N7 7ZZ"


# --- deceased ---


@pytest.mark.hazard("H-15")
def test_a_date_of_death_is_kept_and_given_back(sender, api, reader_token, patient):
    import_json(patient_resource(nhs_number=patient.nhs_number, deceasedDateTime="2026-03-04T10:00:00Z"), sender)
    patient.refresh_from_db()
    assert patient.deceased and patient.date_of_death == datetime.date(2026, 3, 4)
    resource = FhirPatient.model_validate(body(api.get(f"/fhir/Patient/{patient.pk}", token=reader_token)))
    assert str(resource.deceasedDateTime) == "2026-03-04"


@pytest.mark.hazard("H-15", "H-09")
def test_a_death_without_a_full_date_is_a_death_with_no_date_never_a_made_up_one(sender, api, reader_token, patient):
    import_json(patient_resource(nhs_number=patient.nhs_number, deceasedDateTime="2026-03"), sender)
    patient.refresh_from_db()
    assert patient.deceased and patient.date_of_death is None
    resource = FhirPatient.model_validate(body(api.get(f"/fhir/Patient/{patient.pk}", token=reader_token)))
    assert resource.deceasedBoolean is True and resource.deceasedDateTime is None


@pytest.mark.hazard("H-15")
def test_deceased_boolean_true_then_false_from_the_same_source(sender, patient):
    import_json(patient_resource(nhs_number=patient.nhs_number, deceasedBoolean=True), sender)
    patient.refresh_from_db()
    assert patient.deceased and patient.date_of_death is None
    import_json(patient_resource(nhs_number=patient.nhs_number, deceasedBoolean=False), sender)
    patient.refresh_from_db()
    assert not patient.deceased
