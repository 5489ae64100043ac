"""Issue 13: MedicationDispense and MedicationAdministration folded into medications (fhirapi/mapping/medications.py)
as events about a medicine, never by themselves a current one (sharing.record's summary), read back as their own
resource types."""

import json

import pytest
from django.urls import reverse
from django.utils.html import escape
from fhir.resources.R4B.bundle import Bundle

from patients import models as record
from tests import factories

from .conftest import bundle, example_resource, import_json, patient_resource

pytestmark = pytest.mark.django_db

DMD = "https://dmd.nhs.uk"
SNOMED = "http://snomed.info/sct"
AMOXICILLIN = {
    "coding": [
        {"system": DMD, "code": "22608811000001102", "display": "Amoxicillin 500mg capsules (DE Pharmaceuticals)"},
        {"system": SNOMED, "code": "323509004", "display": "Amoxicillin 500mg capsules"},
    ]
}


@pytest.fixture
def ours(sender, patient):
    import_json(patient_resource(nhs_number=patient.nhs_number, family=patient.family_name), sender)
    return patient


def dispense(resource_id="d1", status="completed", **extra):
    return {
        "resourceType": "MedicationDispense",
        "id": resource_id,
        "status": status,
        "medicationCodeableConcept": AMOXICILLIN,
        "subject": {"reference": "Patient/p1"},
        "whenPrepared": "2026-03-01T09:00:00Z",
        "whenHandedOver": "2026-03-01T11:30:00Z",
        "dosageInstruction": [{"text": "Take 1 capsule, 3 times a day."}],
        **extra,
    }


def administration(resource_id="a1", status="completed", **extra):
    return {
        "resourceType": "MedicationAdministration",
        "id": resource_id,
        "status": status,
        "medicationCodeableConcept": AMOXICILLIN,
        "subject": {"reference": "Patient/p1"},
        "effectiveDateTime": "2026-03-02T08:00:00Z",
        **extra,
    }


def imported(resource, sender):
    [outcome] = import_json(resource, sender).outcomes
    return outcome


def medication(sender, key):
    return record.Medication.objects.get(source_organisation=sender, source_id=key)


def search(api, token, path):
    response = api.get(path, token=token)
    assert response.status_code == 200, response.content
    data = json.loads(response.content)
    Bundle.model_validate(data)
    return [entry["resource"] for entry in data.get("entry", [])]


# In


@pytest.mark.hazard("H-10")
@pytest.mark.hazard("H-09")
def test_a_dispensing_is_an_event_with_every_coding_and_the_date_it_was_handed_over(sender, ours):
    assert imported(dispense(), sender).status == "created"
    held = medication(sender, "MedicationDispense/d1")
    assert (held.event, held.status, held.kind) == ("dispensed", "completed", "acute")
    assert held.name == "Amoxicillin 500mg capsules (DE Pharmaceuticals)" and held.code == "22608811000001102"
    assert [coding["code"] for coding in held.codings] == ["22608811000001102", "323509004"]
    assert held.dosage == "Take 1 capsule, 3 times a day."
    # When the patient got it; not when it was prepared, nor a recorded date the resource does not give.
    assert (held.effective_at.isoformat(), held.recorded_at) == ("2026-03-01T11:30:00+00:00", None)


@pytest.mark.hazard("H-09")
def test_a_dispensing_not_handed_over_has_no_date_made_up(sender, ours):
    resource = dispense(category={"coding": [{"code": "inpatient"}]})
    del resource["whenHandedOver"]
    imported(resource, sender)
    held = medication(sender, "MedicationDispense/d1")
    assert (held.effective_at, held.recorded_at, held.kind) == (None, None, "hospital")


@pytest.mark.hazard("H-10")
def test_a_dispensing_naming_a_medication_sent_before_keeps_its_codings(sender, ours):
    import_json({"resourceType": "Medication", "id": "m1", "code": AMOXICILLIN}, sender)
    resource = dispense(medicationReference={"reference": "Medication/m1"})
    del resource["medicationCodeableConcept"]
    imported(resource, sender)
    held = medication(sender, "MedicationDispense/d1")
    assert [coding["code"] for coding in held.codings] == ["22608811000001102", "323509004"]


@pytest.mark.hazard("H-10")
@pytest.mark.parametrize(
    "dosage, shown",
    [
        ({"text": "One capsule now"}, "One capsule now"),
        (
            {
                "dose": {"value": 400, "unit": "milligram", "system": "http://unitsofmeasure.org", "code": "mg"},
                "route": {"coding": [{"system": SNOMED, "code": "47625008", "display": "Intravenous"}]},
            },
            "400 mg, Intravenous",
        ),
        ({"dose": {"value": 0.5, "unit": "mL"}}, "0.5 mL"),
    ],
)
def test_an_administration_is_a_hospital_event_with_the_dose_given(dosage, shown, sender, ours):
    imported(administration(dosage=dosage), sender)
    held = medication(sender, "MedicationAdministration/a1")
    assert (held.event, held.kind, held.status, held.dosage) == ("administered", "hospital", "completed", shown)
    assert held.effective_at.isoformat() == "2026-03-02T08:00:00+00:00"


@pytest.mark.hazard("H-09")
def test_an_administration_over_a_period_keeps_its_start_and_end(sender, ours):
    resource = administration(effectivePeriod={"start": "2026-03-02T08:00:00Z", "end": "2026-03-03T08:00:00Z"})
    del resource["effectiveDateTime"]
    imported(resource, sender)
    held = medication(sender, "MedicationAdministration/a1")
    assert (held.effective_at.isoformat(), held.ended_on.isoformat()) == ("2026-03-02T08:00:00+00:00", "2026-03-03")


@pytest.mark.hazard("H-07")
@pytest.mark.parametrize(
    "resource",
    [
        dispense(status="in-progress"),
        dispense(status="cancelled"),
        administration(status="not-done"),
        administration(status="on-hold"),
    ],
    ids=lambda resource: f"{resource['resourceType']}-{resource['status']}",
)
def test_an_event_not_completed_is_never_recorded_as_current_or_completed(resource, sender, ours):
    imported(resource, sender)
    held = record.Medication.objects.get()
    assert held.status == "stopped" and held.event in ("dispensed", "administered")


def test_an_event_entered_in_error_is_withdrawn(sender, ours):
    imported(dispense(status="entered-in-error"), sender)
    assert medication(sender, "MedicationDispense/d1").entered_in_error


def test_a_prescription_is_recorded_as_prescribed(sender, ours):
    imported(
        {
            "resourceType": "MedicationRequest",
            "id": "rx1",
            "status": "active",
            "intent": "order",
            "medicationCodeableConcept": AMOXICILLIN,
            "subject": {"reference": "Patient/p1"},
        },
        sender,
    )
    assert medication(sender, "MedicationRequest/rx1").event == "prescribed"


# The record: an event is never a current medicine


@pytest.mark.hazard("H-07")
def test_the_summary_never_lists_a_dispensing_or_administration_as_current(
    client, clinician, patient, other_organisation
):
    def entry(name, **fields):
        return factories.MedicationFactory(patient=patient, source_organisation=other_organisation, name=name, **fields)

    entry("Metformin 500mg tablets")  # a current medicine
    # Events about medicines, whatever status a source (or a mistake) gave them.
    entry("Amoxicillin 500mg capsules", event="dispensed", status="completed")
    entry("Ciprofloxacin 400mg infusion", event="administered", status="active", kind="hospital")
    client.force_login(clinician)
    summary = client.get(reverse("record-summary", args=[patient.pk])).content.decode()
    section = summary[summary.index('id="section-medications"') : summary.index('id="section-conditions"')]
    assert "Metformin 500mg tablets" in section
    assert "Amoxicillin" not in section and "Ciprofloxacin" not in section
    assert "2 others on the full list" in section  # never hidden: the page lists them

    page = client.get(reverse("record-medications", args=[patient.pk])).content.decode()
    for name, event in (("Amoxicillin 500mg capsules", "Dispensed"), ("Ciprofloxacin 400mg infusion", "Administered")):
        row = page[page.index(name) : page.index("</tr>", page.index(name))]
        assert event in row and escape(other_organisation.name) in row
    administered = page[page.index("Ciprofloxacin") : page.index("</tr>", page.index("Ciprofloxacin"))]
    assert "Not recorded as completed" in administered and "Current" not in administered


# Out: read back as their own types


@pytest.mark.hazard("H-04")
def test_dispensings_and_administrations_are_read_back_as_what_they_arrived_as(api, reader_token, sender, ours):
    import_json(bundle("batch", dispense(), administration()), sender)
    dispensed = search(api, reader_token, f"/fhir/MedicationDispense?patient={ours.pk}")
    administered = search(api, reader_token, f"/fhir/MedicationAdministration?patient={ours.pk}")
    assert [r["resourceType"] for r in dispensed + administered] == ["MedicationDispense", "MedicationAdministration"]
    assert dispensed[0]["whenPrepared"] == "2026-03-01T09:00:00Z"  # as sent, all of it
    assert search(api, reader_token, f"/fhir/MedicationStatement?patient={ours.pk}") == []


@pytest.mark.hazard("H-04")
@pytest.mark.hazard("H-09")
def test_rows_not_from_fhir_are_built_as_dispensings_and_administrations(
    api, reader_token, patient, other_organisation
):
    def entry(**fields):
        return factories.MedicationFactory(patient=patient, source_organisation=other_organisation, **fields)

    entry(event="dispensed", status="completed", kind="hospital")
    undated = entry(event="administered", status="stopped", effective_at=None)
    entry()
    [dispensed] = search(api, reader_token, f"/fhir/MedicationDispense?patient={patient.pk}")
    assert (dispensed["status"], dispensed["category"]["text"]) == ("completed", "Inpatient")
    [administered] = search(api, reader_token, f"/fhir/MedicationAdministration?patient={patient.pk}")
    assert (administered["id"], administered["status"]) == (str(undated.pk), "unknown")
    # effective[x] is required: an undated one says the time is unknown rather than being given one.
    assert administered["effectivePeriod"]["extension"][0]["valueCode"] == "unknown"
    assert len(search(api, reader_token, f"/fhir/MedicationStatement?patient={patient.pk}")) == 1


@pytest.mark.hazard("H-05")
def test_the_uk_core_dispensings_and_administrations_import_together_and_read_back(api, reader_token, sender, patient):
    richard = example_resource("UKCore-Patient-RichardSmith-Example.xml")
    richard["identifier"] = [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": patient.nhs_number}]
    names = [
        "UKCore-Medication-TimoptolEyeDrops-Example.xml",
        "UKCore-MedicationDispense-Amoxicillin-Example.xml",
        "UKCore-MedicationDispense-CiprofloxacinIV-Example.xml",
        "UKCore-MedicationDispense-CiprofloxacinOral-Example.xml",
        "UKCore-MedicationDispense-EyeDrops-Example.xml",
        "UKCore-MedicationDispense-ParacetamolOral-Example.xml",
        "UKCore-MedicationAdministration-CiprofloxacinIV-Example.xml",
        "UKCore-MedicationAdministration-Sn-ZeroDosage-Example.xml",
        "UKCore-MedicationAdministration-TimoptolEyeDrops-Example.xml",
    ]
    report = import_json(bundle("batch", richard, *(example_resource(name) for name in names)), sender)
    assert {o.status for o in report.outcomes} == {"created", "updated"}, [o.issues for o in report.outcomes]
    assert len(search(api, reader_token, f"/fhir/MedicationDispense?patient={patient.pk}")) == 5
    assert len(search(api, reader_token, f"/fhir/MedicationAdministration?patient={patient.pk}")) == 3
    eye_drops = medication(sender, "MedicationDispense/UKCore-MedicationDispense-EyeDrops-Example")
    assert (eye_drops.name, eye_drops.status) == ("Timoptol 0.5% eye drops (DE Pharmaceuticals)", "stopped")
    iv = medication(sender, "MedicationAdministration/UKCore-MedicationAdministration-CiprofloxacinIV-Example")
    assert iv.dosage == "400 mg, Intravenous"
    assert not record.Medication.objects.filter(patient=patient, status="active").exists()  # none is current
