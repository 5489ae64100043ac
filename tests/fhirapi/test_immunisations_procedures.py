"""Immunization and Procedure (issue 13): categories of their own, FHIR in and out.

In: every UK Core example of either type imports alone and together and lands in its category; every coding is
kept (H-10); a date the source did not give stays missing, words that are not a date go to the notes (H-09);
statuses, reasons, sites, batches, performers and notes kept. Out: built rows (demo data) are valid R4B resources,
received ones come back as sent; search and $everything list them; what the record pages would not show (another
organisation's sensitive entry, one entered in error, a category not shared) the API does not return either."""

import json

import pytest
from fhir.resources.R4B.immunization import Immunization
from fhir.resources.R4B.procedure import Procedure
from lxml import etree

from patients import models as record
from patients.categories import Category
from sharing.models import SharingAgreement
from tests import factories

from .conftest import (
    EXAMPLES,
    RICHARD_SMITH,
    RICHARD_SMITH_NHS_NUMBER,
    bundle,
    example,
    example_resource,
    import_bytes,
    import_json,
    patient_resource,
)

pytestmark = pytest.mark.django_db

IMMUNIZATIONS = sorted(p.name for p in EXAMPLES.glob("UKCore-Immunization-*.xml"))
PROCEDURES = sorted(p.name for p in EXAMPLES.glob("UKCore-Procedure-*.xml"))
VAXZEVRIA = "39114911000001105"
SNOMED = "http://snomed.info/sct"
DMD = "https://dmd.nhs.uk"


def body(response):
    return json.loads(response.content)


def resource_type(name):
    return etree.QName(etree.parse(str(EXAMPLES / name)).getroot()).localname


@pytest.fixture
def richard_smith(sender, care_team):
    """Richard Smith as the sender sends him, in the reader's care."""
    import_bytes(example(RICHARD_SMITH), sender)
    patient = record.Patient.objects.get(nhs_number=RICHARD_SMITH_NHS_NUMBER)
    factories.InvolvementFactory(patient=patient, care_team=care_team)
    return patient


def immunization(resource_id="i1", patient="Patient/p1", **extra):
    return {
        "resourceType": "Immunization",
        "id": resource_id,
        "status": "completed",
        "vaccineCode": {
            "coding": [
                {"system": DMD, "code": VAXZEVRIA, "display": "COVID-19 Vaccine Vaxzevria"},
                {"system": SNOMED, "code": "1119305005", "display": "SARS-CoV-2 antigen vaccine"},
            ]
        },
        "patient": {"reference": patient},
        "occurrenceDateTime": "2021-07-20",
        **extra,
    }


def procedure(resource_id="pr1", patient="Patient/p1", **extra):
    return {
        "resourceType": "Procedure",
        "id": resource_id,
        "status": "completed",
        "code": {"coding": [{"system": SNOMED, "code": "80146002", "display": "Appendicectomy"}]},
        "subject": {"reference": patient},
        "performedDateTime": "2019-12-10T13:00:00+00:00",
        **extra,
    }


def sent(*resources, organisation):
    """Import a patient and resources (one batch); return the outcomes after the patient's."""
    report = import_json(bundle("batch", patient_resource(), *resources), organisation)
    return report.outcomes[1:]


def the_one(model):
    return model.objects.get()


# --- the UK Core examples ----------------------------------------------------------------------------------


def test_the_examples_are_there():
    assert len(IMMUNIZATIONS) == 10 and len(PROCEDURES) == 1


@pytest.mark.hazard("H-05")
@pytest.mark.parametrize("name", IMMUNIZATIONS + PROCEDURES)
def test_each_example_imports_alone_into_its_category(name, sender, richard_smith):
    [outcome] = import_bytes(example(name), sender).outcomes
    assert outcome.status == "created", outcome.issues
    model = record.Immunisation if resource_type(name) == "Immunization" else record.Procedure
    entry = model.objects.get(source_id=f"{resource_type(name)}/{name.removesuffix('.xml')}")
    assert entry.patient == richard_smith and entry.source_organisation == sender
    assert entry.codings and entry.effective_at is not None and not entry.entered_in_error
    assert type(entry).category in (Category.IMMUNISATIONS, Category.PROCEDURES)


@pytest.mark.hazard("H-04", "H-05", "H-10")
def test_all_the_examples_together(sender, richard_smith):
    resources = [example_resource(name) for name in IMMUNIZATIONS + PROCEDURES]
    report = import_json(bundle("batch", *resources), sender)
    assert [o.status for o in report.outcomes] == ["created"] * 11, [o.issues for o in report.outcomes]

    def of(name):
        return record.Immunisation.objects.get(source_id=f"Immunization/UKCore-Immunization-{name}-Example")

    flu = of("InfluenzaVaccine")
    assert flu.vaccine.startswith("Influenza vaccine (split virion, inactivated)")
    assert (flu.code_system, flu.code, flu.status) == (DMD, "11278411000001109", "completed")
    assert flu.effective_at.date().isoformat() == "2013-01-10"
    assert of("Sn-IntramuscularRoute").route == "Intramuscular route (qualifier value)"
    assert of("Sn-LeftUpperArmStructure").site == "Left upper arm structure (body structure)"
    assert of("Sn-LotNumber").lot_number == "R04X"
    assert of("Sn-Manufacturer").notes == "Manufacturer: DREAMLAND Pharmaceuticals Ltd"
    assert of("Sn-Performer").notes == ("Given by: HOLDING, Rafferty, ELLAND ROAD STADIUM - COVID VACCINATION CENTRE")
    protocol = of("Sn-ProtocolApplied")
    assert (protocol.dose, protocol.notes) == ("1", "Protects against: COVID-19")
    assert of("Sn-UnitsOfMeasure").notes == "Amount: 0.5 ml"
    assert of("Sn-PatientConformVaccination").patient == richard_smith  # by its NHS number identifier too

    examination = record.Procedure.objects.get()
    assert (examination.name, examination.code, examination.status) == (
        "Hand microscope examination of skin",
        "128004",
        "completed",
    )
    assert examination.effective_at.isoformat() == "2019-12-10T13:00:00+00:00"
    assert examination.recorded_at is None  # a Procedure has no recorded date: none is made up

    again = import_json(bundle("batch", *resources), sender)
    assert {o.status for o in again.outcomes} == {"unchanged"}
    assert record.Immunisation.objects.count() == 10 and record.Procedure.objects.count() == 1


def test_the_examples_read_back_in_their_categories(api, reader_token, sender, richard_smith):
    for name in IMMUNIZATIONS + PROCEDURES:
        import_bytes(example(name), sender)
    immunisations = body(api.get(f"/fhir/Immunization?patient={richard_smith.pk}&_count=50", token=reader_token))
    assert immunisations["total"] == 10
    for entry in immunisations["entry"]:
        Immunization.model_validate(entry["resource"])
        assert entry["resource"]["patient"]["reference"] == f"Patient/{richard_smith.pk}"
    [found] = body(api.get(f"/fhir/Procedure?patient={richard_smith.pk}", token=reader_token))["entry"]
    read = body(api.get(f"/fhir/Procedure/{found['resource']['id']}", token=reader_token))
    assert read == found["resource"]
    assert read["code"]["coding"][0]["code"] == "128004"
    assert read["performedDateTime"] == "2019-12-10T13:00:00Z"  # the example's instant, as R4B writes it


# --- in: mapping decisions -----------------------------------------------------------------------------------


@pytest.mark.hazard("H-10")
def test_every_coding_of_the_vaccine_is_kept_and_comes_back(api, reader_token, sender, care_team):
    sent(immunization(), organisation=sender)
    entry = the_one(record.Immunisation)
    assert [c["code"] for c in entry.codings] == [VAXZEVRIA, "1119305005"]
    assert (entry.code_system, entry.code) == (DMD, VAXZEVRIA)
    factories.InvolvementFactory(patient=entry.patient, care_team=care_team)
    [got] = body(api.get(f"/fhir/Immunization?patient={entry.patient_id}", token=reader_token))["entry"]
    assert [c["code"] for c in got["resource"]["vaccineCode"]["coding"]] == [VAXZEVRIA, "1119305005"]


@pytest.mark.hazard("H-09")
def test_a_date_in_words_is_not_a_date(sender):
    """occurrenceString and performedString/Age say when in words: no date is stored, the words are kept."""
    outcomes = sent(
        immunization(occurrenceDateTime=None, occurrenceString="in childhood", recorded="2020-03-04"),
        procedure(performedDateTime=None, performedString="some years ago"),
        procedure("pr2", performedDateTime=None, performedAge={"value": 45, "unit": "years"}),
        organisation=sender,
    )
    assert {o.status for o in outcomes} == {"created"}
    vaccination = the_one(record.Immunisation)
    assert vaccination.effective_at is None
    assert vaccination.recorded_at.date().isoformat() == "2020-03-04"  # recorded is not when it was given
    assert vaccination.notes == "Date given as: in childhood"
    by_words, by_age = record.Procedure.objects.order_by("source_id")
    assert (by_words.effective_at, by_words.notes) == (None, "Date given as: some years ago")
    assert (by_age.effective_at, by_age.notes) == (None, "Date given as: at age 45 years")


@pytest.mark.hazard("H-09")
def test_a_procedure_over_a_period_is_dated_by_its_start(sender):
    sent(
        procedure(performedDateTime=None, performedPeriod={"start": "2024-05-01T09:00:00Z", "end": "2024-05-03"}),
        organisation=sender,
    )
    assert the_one(record.Procedure).effective_at.isoformat() == "2024-05-01T09:00:00+00:00"


def test_not_given_keeps_its_reason_and_entered_in_error_is_withdrawn(sender):
    reason = {"coding": [{"system": SNOMED, "code": "591000119102", "display": "Vaccine refused by patient"}]}
    sent(
        immunization(status="not-done", statusReason=reason),
        immunization("i2", status="entered-in-error"),
        organisation=sender,
    )
    declined, withdrawn = record.Immunisation.objects.order_by("source_id")
    assert (declined.status, declined.reason_not_given) == ("not-done", "Vaccine refused by patient")
    assert declined.get_status_display() == "Not given"
    assert withdrawn.entered_in_error


def test_procedure_statuses_reasons_sites_outcomes_and_performers(sender):
    sent(
        procedure(
            status="on-hold",
            bodySite=[{"text": "Left hip"}],
            outcome={"text": "Uncomplicated"},
            performer=[{"actor": {"display": "Mr A Surgeon"}}, {"actor": {"display": "Theatre 3 team"}}],
            reasonCode=[{"text": "Acute appendicitis"}],
            note=[{"text": "Day case."}],
        ),
        procedure("pr2", status="not-done", statusReason={"text": "Patient unwell on the day"}),
        procedure("pr3", status="preparation", performedDateTime=None),
        organisation=sender,
    )
    held, not_done, planned = record.Procedure.objects.order_by("source_id")
    assert (held.status, held.body_site, held.outcome, held.performer) == (
        "in-progress",
        "Left hip",
        "Uncomplicated",
        "Mr A Surgeon, Theatre 3 team",
    )
    assert held.notes == "On hold.\nReason: Acute appendicitis\nDay case."
    assert (not_done.status, not_done.notes) == ("not-done", "Not done because: Patient unwell on the day")
    assert (planned.status, planned.get_status_display(), planned.effective_at) == ("preparation", "Planned", None)


def test_a_procedure_needs_something_to_show(sender):
    [outcome] = sent(procedure(code=None), organisation=sender)
    assert outcome.status == "rejected"
    assert (outcome.issues[0].code, outcome.issues[0].expression) == ("required", "Bundle.entry[1].resource.code")


@pytest.mark.hazard("H-11")
def test_a_sensitive_immunisation_is_seen_only_by_its_source(api, reader_token, sender, care_team):
    restricted = {"security": [{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"}]}
    sent(immunization(meta=restricted), procedure(), organisation=sender)
    entry = the_one(record.Immunisation)
    assert entry.sensitive
    factories.InvolvementFactory(patient=entry.patient, care_team=care_team)
    assert body(api.get(f"/fhir/Immunization?patient={entry.patient_id}", token=reader_token))["total"] == 0
    assert body(api.get(f"/fhir/Procedure?patient={entry.patient_id}", token=reader_token))["total"] == 1


def test_a_category_not_shared_is_not_read(api, reader_token, sender, care_team):
    SharingAgreement.objects.filter(organisation=sender, category=Category.PROCEDURES).update(shares=False)
    sent(immunization(), procedure(), organisation=sender)
    patient_id = the_one(record.Procedure).patient_id
    factories.InvolvementFactory(patient=the_one(record.Procedure).patient, care_team=care_team)
    assert body(api.get(f"/fhir/Procedure?patient={patient_id}", token=reader_token))["total"] == 0
    assert body(api.get(f"/fhir/Immunization?patient={patient_id}", token=reader_token))["total"] == 1


# --- out: built from rows (demo data, other feeds) -------------------------------------------------------------


@pytest.mark.hazard("H-09", "H-10")
def test_built_rows_are_valid_resources_with_their_codings_and_no_made_up_date(
    api, reader_token, patient, other_organisation
):
    dated = factories.ImmunisationFactory(
        patient=patient,
        source_organisation=other_organisation,
        dose="2 of 3",
        codings=[
            {"system": DMD, "code": VAXZEVRIA, "display": "Vaxzevria"},
            {"system": SNOMED, "code": "1119305005", "display": "SARS-CoV-2 antigen vaccine"},
        ],
    )
    undated = factories.ImmunisationFactory(
        patient=patient,
        source_organisation=other_organisation,
        effective_at=None,
        dose="Booster",
        status=record.Immunisation.Status.NOT_DONE,
        reason_not_given="Patient declined",
    )
    factories.ProcedureFactory(patient=patient, source_organisation=other_organisation, notes="Day case.")
    got = {
        entry["resource"]["id"]: entry["resource"]
        for entry in body(api.get(f"/fhir/Immunization?patient={patient.pk}", token=reader_token))["entry"]
    }
    first, second = got[str(dated.pk)], got[str(undated.pk)]
    Immunization.model_validate(first)
    Immunization.model_validate(second)
    assert [c["code"] for c in first["vaccineCode"]["coding"]] == [VAXZEVRIA, "1119305005"]
    assert first["protocolApplied"] == [{"doseNumberPositiveInt": 2, "seriesDosesPositiveInt": 3}]
    assert first["occurrenceDateTime"].startswith(dated.effective_at.date().isoformat()[:4])
    assert (first["site"], first["route"], first["lotNumber"]) == (
        {"text": "Left upper arm"},
        {"text": "Intramuscular"},
        "FL2291",
    )
    # Immunization must have occurrence[x]: an undated one says so in words, never with a date.
    assert "occurrenceDateTime" not in second and second["occurrenceString"] == "Date not recorded"
    assert second["status"] == "not-done" and second["statusReason"] == {"text": "Patient declined"}
    assert second["protocolApplied"] == [{"doseNumberString": "Booster"}]

    [built] = body(api.get(f"/fhir/Procedure?patient={patient.pk}", token=reader_token))["entry"]
    resource = Procedure.model_validate(built["resource"])
    assert resource.code.coding[0].code == "52734007" and resource.bodySite[0].text == "Left hip"
    assert resource.outcome.text == "Uncomplicated" and resource.performer[0].actor.display == "Mr A Surgeon"
    assert resource.note[0].text == "Day case."


def test_everything_lists_them_after_results_and_before_letters(api, reader_token, patient, full_record):
    bundle_ = body(api.get(f"/fhir/Patient/{patient.pk}/$everything", token=reader_token))
    kinds = [entry["resource"]["resourceType"] for entry in bundle_["entry"]]
    assert kinds.index("Observation") < kinds.index("Procedure") < kinds.index("Immunization")
    assert kinds.index("Immunization") < kinds.index("DocumentReference")
    assert kinds.count("Procedure") == kinds.count("Immunization") == 1


def test_the_capability_statement_names_them(api):
    statement = body(api.get("/fhir/metadata"))
    types = {resource["type"] for rest in statement["rest"] for resource in rest["resource"]}
    assert {"Immunization", "Procedure"} <= types
