"""Every UK Core example whose type the record maps: alone (with and without its patient known), and all
together in one run, landing in the right categories."""

import json

import pytest
from django.core.management import call_command
from fhir.resources.R4B.composition import Composition
from lxml import etree

from directory.models import Organisation
from fhirapi.mapping import HANDLED_TYPES
from optout.models import Objection
from patients import models as record
from sharing.models import Involvement

from .conftest import EXAMPLES, RICHARD_SMITH, RICHARD_SMITH_NHS_NUMBER, example, import_bytes, import_json

pytestmark = pytest.mark.django_db


def resource_type(path) -> str:
    return etree.QName(etree.parse(str(path)).getroot()).localname


MAPPED = sorted(p.name for p in EXAMPLES.glob("*.xml") if resource_type(p) in HANDLED_TYPES)
# A parametrisation over an empty glob collects nothing and passes: fail the collection instead.
assert MAPPED, f"no UK Core examples of a mapped type in {EXAMPLES}: the vendored fixtures are missing"
# Examples that cannot join a record even with Richard Smith known, and why.
UNMAPPABLE = {
    "UKCore-Patient-BabyPatient-Example.xml": ("invalid", "not a valid NHS number"),  # fails modulus 11
    "UKCore-Patient-Sn-Makaton-Example.xml": ("required", "no NHS number"),
    "UKCore-Patient-Sn-MultipleLanguages-Example.xml": ("required", "no NHS number"),
    "UKCore-Patient-Sn-Photo-Example.xml": ("required", "no NHS number"),
    "UKCore-Patient-Sn-SingleLanguage-Example.xml": ("required", "no NHS number"),
    "UKCore-Observation-FingerJointInflamed-Example.xml": ("required", "No patient is named"),
    # Their subjects are urn:uuid references to patients the examples do not include.
    "UKCore-Observation-Lab-Albumin-Example.xml": ("not-found", "Patient not found"),
    "UKCore-Composition-Discharge-Example.xml": ("not-found", "Patient not found"),
}
NEEDS_NO_PATIENT = {"Organization", "Practitioner", "PractitionerRole", "Medication", "Patient"}


def test_the_examples_cover_every_mapped_type():
    assert {resource_type(EXAMPLES / name) for name in MAPPED} == HANDLED_TYPES
    # Consent 1, ServiceRequest 5, MedicationDispense 5, MedicationAdministration 3 (issue 13).
    assert len(MAPPED) == 68 + 14 + 11  # + Immunization 10, Procedure 1 (issue 13)


@pytest.mark.hazard("H-05")
@pytest.mark.parametrize("name", MAPPED)
def test_alone_each_example_imports_or_says_why_not(name, sender):
    [outcome] = import_bytes(example(name), sender).outcomes
    kind = resource_type(EXAMPLES / name)
    if (name in UNMAPPABLE and kind == "Patient") or name == "UKCore-Observation-FingerJointInflamed-Example.xml":
        code, words = UNMAPPABLE[name]
        assert outcome.status == "rejected"
        assert (outcome.issues[0].code, words in outcome.issues[0].diagnostics) == (code, True)
    elif kind in NEEDS_NO_PATIENT:
        assert outcome.status == "created", outcome.issues
    else:
        # Its subject is a patient this organisation has not sent: a clear issue, nothing stored.
        assert outcome.status == "rejected"
        [issue] = outcome.issues
        assert issue.code == "not-found" and issue.diagnostics.startswith("Patient not found")
        assert issue.expression.endswith(("subject", "patient", "participant.actor"))


@pytest.mark.parametrize("name", [n for n in MAPPED if n not in UNMAPPABLE])
def test_each_example_imports_once_its_patient_is_known(name, sender):
    import_bytes(example(RICHARD_SMITH), sender)
    import_bytes(example("UKCore-Medication-TimoptolEyeDrops-Example.xml"), sender)
    [outcome] = import_bytes(example(name), sender).outcomes
    assert outcome.status in ("created", "unchanged"), outcome.issues
    assert not [issue for issue in outcome.issues if issue.is_error]


@pytest.mark.hazard("H-04")
def test_all_examples_together_land_in_the_right_categories(sender, capsys):
    call_command("import_fhir", str(EXAMPLES), organisation=sender.ods_code)
    summary = capsys.readouterr().out
    assert "total" in summary and "Observation" in summary
    patient = record.Patient.objects.get(nhs_number=RICHARD_SMITH_NHS_NUMBER)
    assert (patient.given_name, patient.family_name, patient.postcode) == ("Richard", "SMITH", "LS17 7DF")

    def of(model, **filters):
        return model.objects.filter(patient=patient, source_organisation=sender, **filters)

    assert of(record.Allergy).count() == 8
    assert of(record.Allergy, entered_in_error=True).get().source_id.endswith("EnteredInError-Example")
    assert set(of(record.Allergy).values_list("clinical_status", flat=True)) == {"active", ""}
    assert set(of(record.Condition).values_list("name", flat=True)) == {
        "Bleeding from ear",
        "Loosening of total hip replacement",
    }
    assert of(record.Medication).count() == 9 + 5 + 3  # statements and prescriptions, dispensings, administrations
    assert of(record.Medication, event="dispensed").count() == 5
    assert of(record.Medication, event="administered").count() == 3
    eye_drops = of(record.Medication, source_id="MedicationRequest/UKCore-MedicationRequest-EyeDrops-Example").get()
    assert eye_drops.name == "Timoptol 0.5% eye drops (DE Pharmaceuticals)" and eye_drops.code == "18616211000001106"
    # inpatient prescriptions, inpatient dispensings, administrations
    assert of(record.Medication, kind="hospital").count() == 7 + 4 + 3
    assert of(record.Alert).get().text == "Patient has a severe peanut allergy."
    appointment = of(record.Appointment, source_id__startswith="Appointment/").get()
    assert (appointment.service, appointment.status, appointment.clinician) == (
        "Orthopaedic Surgery",
        "booked",
        "Dr Sandra Gose",
    )
    encounter = of(record.Appointment, source_id__startswith="Encounter/").get()
    assert (encounter.status, encounter.clinician) == ("attended", "Mrs Sandra Gose")  # named by its Practitioner
    assert (encounter.kind, encounter.encounter_class, encounter.ends_at.isoformat()) == (
        "admission",
        "IMP",
        "2019-12-11T13:00:00+00:00",
    )
    referrals = of(record.Appointment, kind="referral")
    assert referrals.count() == 5 and set(referrals.values_list("status", flat=True)) == {"requested"}
    assert not Objection.objects.exists()  # the example Consent permits information access: not an objection
    assert of(record.Immunisation).count() == 10 and of(record.Procedure).get().code == "128004"
    assert set(of(record.Immunisation).values_list("code", flat=True)) == {"11278411000001109", "39114911000001105"}
    assert of(record.Letter).count() == 2
    assert of(record.CarePlan).get().title == "Weight management plan"
    assert of(record.CareEvent).get().title == "Smoking cessation therapy"
    assert record.SupportPerson.objects.get(patient=patient).relationship == "partner"
    assert Involvement.objects.get(patient=patient).ended_at is not None  # the CareTeam is inactive

    lab = of(record.Result, source_id="DiagnosticReport/UKCore-DiagnosticReport-Lab-DiagnosticStudiesReport-Example")
    # Its result is the full blood count panel: the panel's members' values belong to the report.
    assert set(lab.get().observations.values_list("name", flat=True)) == {
        "White blood cell count in fluid",
        "Nucleated red blood cell count in blood",
    }
    studies = of(record.Result, source_id="DiagnosticReport/UKCore-DiagnosticReport-DiagnosticStudiesReport-Example")
    assert list(studies.get().observations.values_list("name", flat=True)) == ["Finger joint inflamed"]
    bp = of(record.Result, source_id="Observation/UKCore-Observation-24HourBloodPressure-Example").get()
    assert sorted(bp.observations.values_list("value", flat=True)) == [84, 102]
    assert not of(
        record.Result,
        source_id__in=[
            "Observation/UKCore-Observation-Lab-WhiteCellCount-Example",
            "Observation/UKCore-Observation-Group-FullBloodCount-Example",
        ],
    ).exists()
    assert Organisation.objects.get(ods_code="GP5").kind == Organisation.Kind.GP_PRACTICE

    counts = {model: model.objects.count() for model in (*record.ENTRY_MODELS.values(), record.Observation)}
    call_command("import_fhir", str(EXAMPLES), organisation=sender.ods_code)
    total = capsys.readouterr().out.splitlines()[-1].split()
    assert total[:3] == ["total", "0", "0"]  # nothing created or updated the second time
    assert counts == {model: model.objects.count() for model in counts}


def test_a_discharge_summary_joins_the_record_through_its_bundle(sender):
    """The Composition's subject is a urn:uuid: sent with that patient in one bundle, it resolves."""
    composition = json.loads(
        Composition.model_validate_xml(example("UKCore-Composition-Discharge-Example.xml")).model_dump_json()
    )
    patient = json.loads(import_bytes(example(RICHARD_SMITH), sender).outcomes[0].entry.resource.model_dump_json())
    report = import_json(
        {
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [
                {"fullUrl": "urn:uuid:c8225cc8-8026-466f-80f8-fc2832a4b9d5", "resource": patient},
                {"resource": composition},
            ],
        },
        sender,
    )
    assert [o.status for o in report.outcomes] == ["unchanged", "created"]
    letter = record.Letter.objects.get()
    assert letter.kind == record.Letter.Kind.DISCHARGE
    assert letter.title == "Accident & Emergency Discharge summary"
    assert "60 year old man complaining of chest pain" in letter.body
