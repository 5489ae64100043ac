"""Issue 13: Encounters as attendances and admissions, ServiceRequests as referrals, in the appointments category
(fhirapi/mapping/appointments.py), and read back as what they arrived as."""

import json

import pytest
from django.utils import timezone
from fhir.resources.R4B.bundle import Bundle

from patients import models as record
from tests import factories

from .conftest import bundle, example_resource, import_json, patient_resource

pytestmark = pytest.mark.django_db

ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
SNOMED = "http://snomed.info/sct"


@pytest.fixture
def ours(sender, patient):
    """The reader's patient, as the sender knows them (Patient/p1)."""
    import_json(patient_resource(nhs_number=patient.nhs_number, family=patient.family_name), sender)
    return patient


def encounter(resource_id="e1", code="IMP", status="in-progress", **extra):
    return {
        "resourceType": "Encounter",
        "id": resource_id,
        "status": status,
        "class": {"system": ACT_CODE, "code": code},
        "subject": {"reference": "Patient/p1"},
        "period": {"start": "2026-03-01T09:30:00Z"},
        **extra,
    }


def service_request(resource_id="sr1", status="active", **extra):
    return {
        "resourceType": "ServiceRequest",
        "id": resource_id,
        "status": status,
        "intent": "order",
        "code": {"coding": [{"system": SNOMED, "code": "73761001", "display": "Colonoscopy"}]},
        "subject": {"reference": "Patient/p1"},
        **extra,
    }


def imported(resource, sender):
    [outcome] = import_json(resource, sender).outcomes
    return outcome


def appointment(sender, key):
    return record.Appointment.objects.get(source_organisation=sender, source_id=key)


def body(response):
    assert response.status_code == 200, response.content
    data = json.loads(response.content)
    if data["resourceType"] == "Bundle":
        Bundle.model_validate(data)
    return data


def search(api, token, path):
    return [entry["resource"] for entry in body(api.get(path, token=token)).get("entry", [])]


# Encounter -> attendance or admission


@pytest.mark.hazard("H-04")
@pytest.mark.parametrize(
    "code, kind",
    [
        ("IMP", "admission"),
        ("ACUTE", "admission"),
        ("NONAC", "admission"),
        ("SS", "admission"),  # a short stay (day case) is in a hospital bed
        ("AMB", "attendance"),
        ("EMER", "attendance"),
        ("VR", "attendance"),
        ("PRENC", "attendance"),  # a pre-admission visit is not yet the admission
        ("OBSENC", "attendance"),
    ],
)
def test_an_encounters_class_makes_it_an_attendance_or_an_admission(code, kind, sender, ours):
    assert imported(encounter(code=code), sender).status == "created"
    held = appointment(sender, "Encounter/e1")
    assert (held.kind, held.encounter_class, held.patient_id) == (kind, code, ours.pk)


@pytest.mark.hazard("H-04")
@pytest.mark.hazard("H-08")
@pytest.mark.parametrize(
    "status, shown",
    [
        ("planned", "booked"),
        ("arrived", "in-progress"),
        ("triaged", "in-progress"),
        ("in-progress", "in-progress"),
        ("onleave", "in-progress"),  # on leave from the ward: still admitted
        ("finished", "attended"),
        ("cancelled", "cancelled"),
    ],
)
def test_an_encounters_status_says_where_it_stands(status, shown, sender, ours):
    imported(encounter(status=status), sender)
    assert appointment(sender, "Encounter/e1").status == shown


def test_an_encounter_entered_in_error_is_withdrawn(sender, ours):
    imported(encounter(status="entered-in-error"), sender)
    assert appointment(sender, "Encounter/e1").entered_in_error


@pytest.mark.hazard("H-09")
def test_an_admission_keeps_its_period_service_place_and_people(sender, ours):
    imported(
        encounter(
            status="finished",
            period={"start": "2026-03-01T09:30:00Z", "end": "2026-03-04T15:00:00Z"},
            serviceType={"text": "Cardiology"},
            type=[{"text": "Seen in hospital ward"}],
            location=[{"location": {"display": "Ward 7, St Elsewhere"}}],
            participant=[{"individual": {"display": "Dr Sandra Gose"}}],
            reasonCode=[{"text": "Chest pain"}],
        ),
        sender,
    )
    held = appointment(sender, "Encounter/e1")
    assert (held.effective_at.isoformat(), held.ends_at.isoformat()) == (
        "2026-03-01T09:30:00+00:00",
        "2026-03-04T15:00:00+00:00",
    )
    assert (held.service, held.location, held.clinician, held.description, held.recorded_at) == (
        "Cardiology",
        "Ward 7, St Elsewhere",
        "Dr Sandra Gose",
        "Chest pain",
        None,
    )


@pytest.mark.hazard("H-09")
def test_an_open_admission_has_no_end_and_an_undated_one_no_date(sender, ours):
    imported(encounter(period=None), sender)
    held = appointment(sender, "Encounter/e1")
    assert (held.effective_at, held.ends_at, held.service) == (None, None, "Admission")


@pytest.mark.hazard("H-04")
def test_community_encounters_stay_events_but_a_hospital_stay_is_an_admission_whoever_runs_the_hospital(sender, ours):
    imported(encounter("home", code="HH", status="finished"), sender)  # a home visit by the acute trust
    assert record.CareEvent.objects.filter(source_id="Encounter/home").exists()
    sender.kind = sender.Kind.MENTAL_HEALTH
    sender.save()
    imported(encounter("clinic", code="AMB", status="finished"), sender)
    imported(encounter("ward", code="IMP"), sender)  # a mental health ward
    assert record.CareEvent.objects.filter(source_id="Encounter/clinic").exists()
    assert appointment(sender, "Encounter/ward").kind == "admission"
    assert not record.Appointment.objects.filter(source_id__in=["Encounter/home", "Encounter/clinic"]).exists()


# ServiceRequest -> referral


@pytest.mark.hazard("H-04")
@pytest.mark.parametrize(
    "status, shown",
    [("active", "requested"), ("on-hold", "requested"), ("completed", "completed"), ("revoked", "cancelled")],
)
def test_a_service_request_is_a_referral_with_its_status(status, shown, sender, ours):
    assert imported(service_request(status=status), sender).status == "created"
    held = appointment(sender, "ServiceRequest/sr1")
    assert (held.kind, held.status, held.service) == ("referral", shown, "Colonoscopy")
    assert ("On hold." in held.description) == (status == "on-hold")


def test_a_service_request_entered_in_error_is_withdrawn(sender, ours):
    imported(service_request(status="entered-in-error"), sender)
    assert appointment(sender, "ServiceRequest/sr1").entered_in_error


@pytest.mark.hazard("H-05")
def test_a_draft_is_not_yet_a_referral_and_says_so(sender, ours):
    outcome = imported(service_request(status="draft"), sender)
    assert outcome.status == "rejected"
    [issue] = outcome.issues
    assert (issue.severity, issue.code, issue.expression) == ("warning", "not-supported", "ServiceRequest.status")
    assert not record.Appointment.objects.exists()


@pytest.mark.hazard("H-10")
def test_a_request_not_to_do_something_is_refused_never_shown_as_a_referral(sender, ours):
    outcome = imported(service_request(doNotPerform=True), sender)
    assert outcome.status == "rejected"
    assert (outcome.issues[0].code, outcome.issues[0].expression) == ("not-supported", "ServiceRequest.doNotPerform")
    assert not record.Appointment.objects.exists()


@pytest.mark.hazard("H-09")
def test_a_referral_is_dated_when_it_should_happen_and_recorded_when_requested(sender, ours):
    imported(
        service_request(
            authoredOn="2026-02-10T11:00:00Z",
            occurrenceDateTime="2026-04-01",
            requester={"display": "Dr Paul Rastall"},
            performer=[{"display": "Endoscopy unit"}],
            reasonCode=[{"text": "Swollen abdomen"}],
            note=[{"text": "Urgent two-week wait"}],
        ),
        sender,
    )
    held = appointment(sender, "ServiceRequest/sr1")
    assert (timezone.localtime(held.effective_at).date().isoformat(), held.recorded_at.isoformat()) == (
        "2026-04-01",
        "2026-02-10T11:00:00+00:00",
    )
    assert (held.clinician, held.location) == ("Dr Paul Rastall", "Endoscopy unit")
    assert held.description == "Swollen abdomen\n\nUrgent two-week wait"


@pytest.mark.hazard("H-09")
def test_a_referral_with_no_occurrence_has_no_date_made_up(sender, ours):
    imported(service_request(authoredOn="2026-02-10"), sender)
    held = appointment(sender, "ServiceRequest/sr1")
    assert held.effective_at is None and held.recorded_at.date().isoformat() == "2026-02-10"


def test_sending_the_same_again_changes_nothing(sender, ours):
    for resource in (encounter(), service_request()):
        assert imported(resource, sender).status == "created"
        assert imported(resource, sender).status == "unchanged"


# Out: each as the type it arrived as


@pytest.mark.hazard("H-04")
def test_encounters_and_referrals_are_read_back_as_what_they_arrived_as(api, reader_token, sender, ours):
    import_json(
        bundle(
            "batch",
            encounter(),
            service_request(),
            {
                "resourceType": "Appointment",
                "id": "a1",
                "status": "booked",
                "start": "2026-05-01T10:00:00Z",
                "participant": [{"actor": {"reference": "Patient/p1"}, "status": "accepted"}],
            },
        ),
        sender,
    )
    encounters = search(api, reader_token, f"/fhir/Encounter?patient={ours.pk}")
    referrals = search(api, reader_token, f"/fhir/ServiceRequest?patient={ours.pk}")
    appointments = search(api, reader_token, f"/fhir/Appointment?patient={ours.pk}")
    assert [r["resourceType"] for r in encounters + referrals + appointments] == [
        "Encounter",
        "ServiceRequest",
        "Appointment",
    ]
    assert encounters[0]["id"] == f"appointment-{appointment(sender, 'Encounter/e1').pk}"
    assert referrals[0]["code"]["coding"][0]["code"] == "73761001"  # as sent
    for kind, found in (("Encounter", encounters[0]), ("ServiceRequest", referrals[0])):
        assert body(api.get(f"/fhir/{kind}/{found['id']}", token=reader_token)) == found
    everything = search(api, reader_token, f"/fhir/Patient/{ours.pk}/$everything")
    kinds = [r["resourceType"] for r in everything]
    assert (kinds.count("Encounter"), kinds.count("ServiceRequest"), kinds.count("Appointment")) == (1, 1, 1)


@pytest.mark.hazard("H-04")
def test_rows_not_from_fhir_are_built_as_encounters_and_referrals(api, reader_token, patient, other_organisation):
    def entry(**fields):
        return factories.AppointmentFactory(patient=patient, source_organisation=other_organisation, **fields)

    admitted = entry(kind="admission", status="in-progress", encounter_class="IMP", service="Ward 7")
    entry(kind="attendance", status="attended", encounter_class="EMER", service="Emergency department")
    referral = entry(kind="referral", status="requested", service="Podiatry", clinician="Dr Who")
    entry(service="Diabetes clinic")
    encounters = search(api, reader_token, f"/fhir/Encounter?patient={patient.pk}")
    assert {(e["class"]["code"], e["status"]) for e in encounters} == {("IMP", "in-progress"), ("EMER", "finished")}
    assert "end" not in next(e["period"] for e in encounters if e["id"] == f"appointment-{admitted.pk}")
    [request] = search(api, reader_token, f"/fhir/ServiceRequest?patient={patient.pk}")
    assert (request["id"], request["status"], request["code"]["text"], request["requester"]["display"]) == (
        str(referral.pk),
        "active",
        "Podiatry",
        "Dr Who",
    )
    [booked] = search(api, reader_token, f"/fhir/Appointment?patient={patient.pk}")
    assert booked["serviceType"][0]["text"] == "Diabetes clinic"


@pytest.mark.hazard("H-05")
def test_the_uk_core_encounter_and_referrals_import_together_and_read_back(api, reader_token, sender, patient):
    """The UK Core examples of these types, in one batch with Richard Smith (as the reader's patient) and the
    practitioners they name."""
    richard = example_resource("UKCore-Patient-RichardSmith-Example.xml")
    richard["identifier"] = [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": patient.nhs_number}]
    names = [
        "UKCore-Practitioner-ConsultantSandraGose-Example.xml",
        "UKCore-Practitioner-DoctorPaulRastall-Example.xml",
        "UKCore-Practitioner-PharmacistJimmyChuck-Example.xml",
        "UKCore-Encounter-InpatientEncounter-Example.xml",
        "UKCore-ServiceRequest-CTChestScan-Example.xml",
        "UKCore-ServiceRequest-ColonoscopyRequest-Example.xml",
        "UKCore-ServiceRequest-ECG-Example.xml",
        "UKCore-ServiceRequest-HipReplacement-Example.xml",
        "UKCore-ServiceRequest-Lab-CReactiveProtein-Example.xml",
    ]
    report = import_json(bundle("batch", richard, *(example_resource(name) for name in names)), sender)
    assert {o.status for o in report.outcomes} == {"created", "updated"}, [o.issues for o in report.outcomes]
    referrals = search(api, reader_token, f"/fhir/ServiceRequest?patient={patient.pk}")
    assert len(referrals) == 5
    [admission] = search(api, reader_token, f"/fhir/Encounter?patient={patient.pk}")
    assert admission["class"]["code"] == "IMP" and admission["period"]["end"] == "2019-12-11T13:00:00Z"
    colonoscopy = appointment(sender, "ServiceRequest/UKCore-ServiceRequest-ColonoscopyRequest-Example")
    assert (colonoscopy.service, colonoscopy.clinician) == ("Colonoscopy requested", "Dr Paul Rastall")
