"""Observations keep what the source said (H-10): every coding, UCUM units, category, a blood pressure as one
reading of components, interpretation and reference ranges; standalone observations stay observations and
no DiagnosticReport is made up for them; no date is invented for a value the source did not date (H-09)."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.core.management import call_command
from fhir.resources.R4B.diagnosticreport import DiagnosticReport

from fhirapi import serialise
from fhirapi.registry import BUILDERS
from fhirapi.systems import LOINC, SNOMED, UCUM
from patients import models as record

from .conftest import (
    EXAMPLES,
    RICHARD_SMITH,
    bundle,
    example,
    example_resource,
    import_bytes,
    import_json,
    patient_resource,
)

pytestmark = pytest.mark.django_db

VITAL_SIGNS = "http://terminology.hl7.org/CodeSystem/observation-category"
RICHARD = "Patient/UKCore-Patient-RichardSmith-Example"


def coding(system, code, display):
    return {"system": system, "code": code, "display": display}


def builds(result):
    return BUILDERS[record.Result](result)


@pytest.fixture
def richard(sender):
    import_bytes(example(RICHARD_SMITH), sender)
    return record.Patient.objects.get()


@pytest.mark.hazard("H-10")
def test_a_blood_pressure_is_one_reading_keeping_loinc_snomed_ucum_and_its_category(sender, richard):
    """UK Core's batch example: five blood pressures, each coded in SNOMED CT and LOINC, with UCUM mm[Hg]."""
    report = import_bytes(example("UKCore-Bundle-BatchPOST-Example.xml"), sender)
    assert [o.status for o in report.outcomes] == ["created"] * 5
    reading = record.Result.objects.get(source_id="Observation/857d3c72-1672-4c8f-b6a1-4d04b44b0d7a")
    assert (reading.kind, reading.name, reading.observation_category) == (
        "observation",
        "Blood pressure",
        "vital-signs",
    )
    assert reading.codings == [
        coding(SNOMED, "75367002", "Blood pressure"),
        coding(LOINC, "85354-9", "Blood pressure panel with all children optional"),
    ]
    assert (reading.code_system, reading.code) == (SNOMED, "75367002")  # the first coded one
    assert reading.effective_at == datetime(2024, 3, 25, 12, 20, tzinfo=UTC)
    systolic, diastolic = sorted(reading.observations.all(), key=lambda value: -value.value)
    assert {systolic.source_id, diastolic.source_id} == {reading.source_id}  # one reading
    for value in (systolic, diastolic):
        assert (value.reading_name, value.reading_code) == ("Blood pressure", "75367002")
        assert (value.unit, value.unit_system, value.unit_code) == ("millimeter of mercury", UCUM, "mm[Hg]")
        assert value.observation_category == "vital-signs"
        assert value.effective_at == reading.effective_at
    assert (systolic.name, systolic.value) == ("Systolic blood pressure", 120)
    assert systolic.codings == [
        coding(SNOMED, "72313002", "Systolic arterial pressure"),
        coding(LOINC, "8480-6", "Systolic blood pressure"),
    ]
    assert [c["code"] for c in diastolic.codings] == ["1091811000000102", "8462-4"]
    assert builds(reading) is None  # given back as the Observation it was, never as a DiagnosticReport
    assert record.Result.objects.filter(kind="report").count() == 0


@pytest.mark.hazard("H-10")
def test_the_24_hour_blood_pressure_example_is_one_vital_signs_reading(sender, richard):
    import_bytes(example("UKCore-Observation-24HourBloodPressure-Example.xml"), sender)
    reading = record.Result.objects.get()
    assert (reading.kind, reading.observation_category) == ("observation", "vital-signs")
    assert reading.codings == [coding(SNOMED, "314463006", "24 hour blood pressure")]
    assert sorted(
        (v.name, v.value, v.unit_code, v.reading_name, v.codings[0]["code"]) for v in reading.observations.all()
    ) == [
        ("Diastolic blood pressure", 84, "mm[Hg]", "24 hour blood pressure", "314465004"),
        ("Systolic blood pressure", 102, "mm[Hg]", "24 hour blood pressure", "314464000"),
    ]


@pytest.mark.hazard("H-10")
def test_every_coding_of_a_lab_value_is_kept_and_issued_is_its_date(sender):
    """UK Core's albumin: two SNOMED CT codes (PBCL and PaLM), dated only by `issued`."""
    albumin = example_resource("UKCore-Observation-Lab-Albumin-Example.xml")
    patient = "urn:uuid:ab87a3f8-1d37-44a9-804e-5e962598a6e4"
    import_json(bundle("transaction", patient_resource(), albumin, full_urls=[patient, None]), sender)
    value = record.Observation.objects.get()
    assert [c["code"] for c in value.codings] == ["1000821000000103", "1105861000000106"]
    assert (value.value, value.unit, value.unit_system, value.unit_code) == (47, "g/L", UCUM, "g/L")
    assert (value.reference_low, value.reference_high, value.reference_text) == (35, 50, "")
    issued = datetime(2022, 3, 8, 14, 23, tzinfo=UTC)
    assert value.effective_at == issued and value.result.recorded_at == issued
    assert value.observation_category == "laboratory" == value.result.observation_category


def hba1c(**extra):
    return {
        "resourceType": "Observation",
        "id": "hba1c",
        "status": "final",
        "category": [{"coding": [{"system": VITAL_SIGNS, "code": "laboratory"}]}],
        "code": {"coding": [{"system": LOINC, "code": "4548-4", "display": "Haemoglobin A1c"}]},
        "subject": {"reference": "Patient/p1"},
        "effectiveDateTime": "2024-01-02T09:00:00Z",
        "valueQuantity": {"value": 62, "unit": "mmol/mol", "system": UCUM, "code": "mmol/mol"},
        **extra,
    }


@pytest.mark.hazard("H-10")
def test_interpretation_and_every_reference_range_are_kept_as_text_and_the_flag_stays(sender):
    import_json(patient_resource(), sender)
    observation = hba1c(
        interpretation=[
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
                        "code": "H",
                        "display": "High",
                    }
                ]
            },
            {"text": "Above the diabetes target"},
        ],
        referenceRange=[
            {"low": {"value": 20}, "high": {"value": 41}, "text": "20-41 (non-diabetic)"},
            {"high": {"value": 48, "unit": "mmol/mol"}, "appliesTo": [{"text": "People with diabetes"}]},
            {"text": "Under 53 in pregnancy"},
        ],
    )
    import_json(observation, sender)
    value = record.Observation.objects.get()
    assert (value.flag, value.interpretation) == ("H", "High, Above the diabetes target")
    assert (value.reference_low, value.reference_high) == (20, 41)
    assert value.reference_text == (
        "20-41 (non-diabetic); <= 48 mmol/mol (People with diabetes); Under 53 in pregnancy"
    )


@pytest.mark.hazard("H-10")
def test_a_unit_sent_only_as_a_ucum_code_is_shown_as_that_code(sender):
    import_json(patient_resource(), sender)
    import_json(hba1c(valueQuantity={"value": 88, "system": UCUM, "code": "umol/L"}), sender)
    value = record.Observation.objects.get()
    assert (value.unit, value.unit_system, value.unit_code) == ("umol/L", UCUM, "umol/L")


@pytest.mark.hazard("H-09")
def test_an_observation_without_a_date_keeps_none_and_re_sending_it_keeps_none(sender, richard):
    """UK Core's absent-data example gives no effective[x] and no issued: no date is made up for it."""
    name = "UKCore-Observation-Lab-Sn-AbsentData-Example.xml"
    import_bytes(example(name), sender)
    value = record.Observation.objects.get()
    assert (value.value, value.value_text, value.effective_at) == (None, "Specimen unsatisfactory for evaluation", None)
    assert value.result.effective_at is None and value.result.kind == "observation"
    assert [o.status for o in import_bytes(example(name), sender).outcomes] == ["unchanged"]
    assert record.Observation.objects.get().effective_at is None


@pytest.mark.hazard("H-09")
def test_a_report_member_without_a_date_keeps_none_rather_than_its_reports_date(sender, richard):
    import_json(
        bundle(
            "batch",
            example_resource("UKCore-DiagnosticReport-Lab-DiagnosticStudiesReport-Example.xml"),
            example_resource("UKCore-Observation-Group-FullBloodCount-Example.xml"),
            example_resource("UKCore-Observation-Lab-WhiteCellCount-Example.xml"),
        ),
        sender,
    )
    report = record.Result.objects.get()
    assert report.effective_at == datetime(2023, 1, 13, 14, 53, 23, tzinfo=UTC)
    assert report.observations.get().effective_at is None


@pytest.mark.hazard("H-10")
@pytest.mark.hazard("H-04")
def test_all_uk_core_examples_give_one_report_per_diagnostic_report_and_observations_as_observations(sender, capsys):
    """Before, 39 "reports" for 41 observations: every standalone observation was wrapped in a made-up one."""
    call_command("import_fhir", str(EXAMPLES), organisation=sender.ods_code)
    capsys.readouterr()
    reports = record.Result.objects.filter(kind=record.Result.Kind.REPORT)
    assert sorted(reports.values_list("source_id", flat=True)) == [
        f"DiagnosticReport/UKCore-DiagnosticReport-{name}-Example"
        for name in ("CTChestScan", "DiagnosticStudiesReport", "ECG", "Lab-DiagnosticStudiesReport")
    ]
    standalone = record.Result.objects.filter(kind=record.Result.Kind.OBSERVATION)
    assert all(key.startswith("Observation/") for key in standalone.values_list("source_id", flat=True))
    assert standalone.count() == 16  # 11 Observation examples of Richard Smith's, 5 readings in the batch
    assert all(builds(result) is None for result in standalone)
    # The members of the lab report's panel are inside the report, with no Result of their own.
    assert not record.Result.objects.filter(source_id__contains="CellCount").exists()
    categories = set(standalone.values_list("observation_category", flat=True))
    assert {"vital-signs", "social-history", "laboratory", "exam", "survey", "therapy"} <= categories
    vital = record.Observation.objects.filter(observation_category="vital-signs")
    assert vital.count() == 12 and set(vital.values_list("unit_code", flat=True)) == {"mm[Hg]"}
    assert all(value.reading_name for value in vital)


@pytest.mark.hazard("H-10")
def test_a_report_lists_one_observation_per_reading_and_validates(sender, richard):
    blood_pressure = example_resource("UKCore-Observation-24HourBloodPressure-Example.xml")
    report = {
        "resourceType": "DiagnosticReport",
        "id": "bp-clinic",
        "status": "final",
        "code": {
            "coding": [
                {"system": SNOMED, "code": "4241000179101", "display": "Laboratory report"},
                {"system": LOINC, "code": "11502-2", "display": "Laboratory report"},
            ]
        },
        "subject": {"reference": RICHARD},
        "issued": "2023-03-11T09:00:00Z",
        "result": [{"reference": "Observation/UKCore-Observation-24HourBloodPressure-Example"}],
    }
    import_json(bundle("batch", report, blood_pressure), sender)
    result = record.Result.objects.get()
    assert result.kind == "report" and result.observations.count() == 2
    data = builds(result)
    assert [c["code"] for c in data["code"]["coding"]] == ["4241000179101", "11502-2"]
    first_row = min(result.observations.all(), key=lambda value: value.pk)
    assert data["result"] == [{"reference": f"Observation/{first_row.pk}", "display": "24 hour blood pressure"}]
    assert data["issued"] == datetime(2023, 3, 11, 9, tzinfo=UTC)
    resource = serialise.entry(result).model()  # validated by R4B
    assert isinstance(resource, DiagnosticReport) and len(resource.result) == 1


@pytest.mark.hazard("H-06")
def test_an_observation_of_another_patient_never_joins_a_report(sender, richard):
    import_json(patient_resource(), sender)  # Patient/p1, someone else
    report = {
        "resourceType": "DiagnosticReport",
        "id": "r1",
        "status": "final",
        "code": {"text": "Diabetes review bloods"},
        "subject": {"reference": RICHARD},
        "result": [{"reference": "Observation/hba1c"}],
    }
    outcomes = import_json(bundle("batch", report, hba1c()), sender).outcomes
    assert [o.status for o in outcomes] == ["created", "rejected"]
    assert outcomes[1].issues[0].code == "business-rule"
    assert not record.Observation.objects.exists()
    # Sent again alone it is still refused: the report that lists it is remembered.
    assert import_json(hba1c(), sender).outcomes[0].status == "rejected"
    # Sent first, it stands alone; a report arriving later does not take another patient's values.
    import_json(hba1c(id="hba1c-2"), sender)
    outcome = import_json({**report, "id": "r2", "result": [{"reference": "Observation/hba1c-2"}]}, sender).outcomes[0]
    assert outcome.status == "created" and "another patient's" in outcome.issues[0].diagnostics
    assert record.Observation.objects.get().result.source_id == "Observation/hba1c-2"


@pytest.mark.hazard("H-10")
def test_values_are_kept_when_a_new_coding_arrives(sender):
    """A re-send that adds a coding updates the value in place: nothing else moves."""
    import_json(patient_resource(), sender)
    import_json(hba1c(), sender)
    richer = hba1c(
        code={
            "coding": [
                {"system": LOINC, "code": "4548-4", "display": "Haemoglobin A1c"},
                {"system": SNOMED, "code": "1107481000000106", "display": "HbA1c level (IFCC)"},
            ]
        }
    )
    assert [o.status for o in import_json(richer, sender).outcomes] == ["updated"]
    value = record.Observation.objects.get()
    assert [c["system"] for c in value.codings] == [LOINC, SNOMED] and value.value == Decimal(62)
