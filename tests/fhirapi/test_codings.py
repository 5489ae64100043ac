"""Every coding kept (H-10): a medicine coded in dm+d and SNOMED CT, a condition in SNOMED CT and a local code,
keep all their codings in order (`codings`), and give them all back (serialise.concept). Before, only the first
coded one was kept: the second was lost on import and on read."""

import json

import pytest

from fhirapi.serialise import concept
from patients import models as record
from tests import factories

from .conftest import RICHARD_SMITH, condition_resource, example, import_bytes, import_json, patient_resource

pytestmark = [pytest.mark.django_db, pytest.mark.hazard("H-10")]

DMD = {"system": "https://dmd.nhs.uk", "code": "39732311000001104", "display": "Amoxicillin 250mg capsules"}
SNOMED = {"system": "http://snomed.info/sct", "code": "27658006", "display": "Amoxicillin"}
LOCAL = {"system": "https://example.org/local-codes", "code": "T2"}  # no display: kept as ""


def statement(**medication):
    return {
        "resourceType": "MedicationStatement",
        "id": "m1",
        "status": "active",
        "subject": {"reference": "Patient/p1"},
        "effectiveDateTime": "2024-01-01",
        **medication,
    }


def test_a_medicines_dmd_and_snomed_codings_are_both_kept_in_order(sender):
    import_json(patient_resource(), sender)
    import_json(statement(medicationCodeableConcept={"coding": [DMD, SNOMED, {"code": "AMX250"}]}), sender)
    medication = record.Medication.objects.get()
    assert medication.codings == [DMD, SNOMED, {"system": "", "code": "AMX250", "display": ""}]
    assert (medication.code_system, medication.code) == (DMD["system"], DMD["code"])  # the first, as before


def test_a_contained_medications_codings_are_kept(sender):
    import_json(patient_resource(), sender)
    contained = [{"resourceType": "Medication", "id": "med", "code": {"coding": [DMD, SNOMED]}}]
    import_json(statement(contained=contained, medicationReference={"reference": "#med"}), sender)
    assert record.Medication.objects.get().codings == [DMD, SNOMED]


def test_a_medication_sent_in_an_earlier_submission_brings_its_codings(sender):
    """The eye drops prescription names its drug by reference to a Medication sent before: its dm+d coding is
    read from what was kept of that Medication."""
    import_bytes(example(RICHARD_SMITH), sender)
    import_bytes(example("UKCore-Medication-TimoptolEyeDrops-Example.xml"), sender)
    import_bytes(example("UKCore-MedicationRequest-EyeDrops-Example.xml"), sender)
    assert record.Medication.objects.get().codings == [
        {
            "system": "https://dmd.nhs.uk",
            "code": "18616211000001106",
            "display": "Timoptol 0.5% eye drops (DE Pharmaceuticals)",
        }
    ]


def test_conditions_and_allergies_keep_every_coding(sender):
    import_json(patient_resource(), sender)
    coded = {"coding": [{**SNOMED, "code": "44054006", "display": "Diabetes type 2"}, LOCAL], "text": "T2DM"}
    import_json(condition_resource(code=coded), sender)
    allergy = {
        "resourceType": "AllergyIntolerance",
        "id": "a1",
        "patient": {"reference": "Patient/p1"},
        "code": {"coding": [DMD, SNOMED]},
    }
    import_json(allergy, sender)
    assert record.Condition.objects.get().codings == [coded["coding"][0], {**LOCAL, "display": ""}]
    assert record.Allergy.objects.get().codings == [DMD, SNOMED]


def test_every_coding_comes_back_on_read(api, reader_token, sender, patient, other_organisation):
    """Sent as FHIR: the resource as sent. Built (demo data, other feeds): every coding the row holds."""
    import_json(patient_resource(nhs_number=patient.nhs_number, family=patient.family_name), sender)
    import_json(statement(medicationCodeableConcept={"coding": [DMD, SNOMED]}), sender)
    held = [SNOMED, {**LOCAL, "display": ""}]
    factories.ConditionFactory(patient=patient, source_organisation=other_organisation, name="Diabetes", codings=held)
    medicines = json.loads(api.get(f"/fhir/MedicationStatement?patient={patient.pk}", token=reader_token).content)
    [medicine] = [entry["resource"] for entry in medicines["entry"]]
    assert medicine["medicationCodeableConcept"]["coding"] == [DMD, SNOMED]
    conditions = json.loads(api.get(f"/fhir/Condition?patient={patient.pk}", token=reader_token).content)
    [condition] = [entry["resource"] for entry in conditions["entry"]]
    assert condition["code"]["coding"] == [SNOMED, LOCAL]


def test_the_builder_falls_back_to_the_one_code_held():
    entry = record.Condition(name="Asthma", code_system="http://snomed.info/sct", code="195967001", codings=[])
    assert concept(entry, "Asthma") == {
        "text": "Asthma",
        "coding": [{"system": "http://snomed.info/sct", "code": "195967001", "display": "Asthma"}],
    }
