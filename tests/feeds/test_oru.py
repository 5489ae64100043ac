"""ORU^R01 → FHIR (feeds.convert.oru), imported through fhirapi.ingest as the pipeline does: values, ranges, flags,
notes, the status sequence, order and duplicates, dates, code mapping, microbiology, and what is refused."""

import datetime
import json
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from directory.models import Organisation
from feeds import segments
from feeds.convert import Held, Invalid, NotAccepted, oru
from feeds.models import CodeMapping, Feed, Message
from feeds.receive import receive
from fhirapi.ingest import Channel, ingest
from fhirapi.models import ReceivedResource
from fhirapi.parse import read
from fhirapi.systems import LOINC, UCUM
from patients.models import Observation, Result
from sharing import record
from sharing.access import decide
from tests import factories

pytestmark = pytest.mark.django_db

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "hl7v2"
LONDON = ZoneInfo("Europe/London")
NHS = "9434765919"
PID = f"PID|1||40800123^^^MRENTR^MEDREC~{NHS}^^^NHS^NH||PEMBERTON^Olivia||19800101|F"
PID_HOSPITAL_NUMBER_ONLY = "PID|1||40800123^^^MRENTR^MEDREC||PEMBERTON^Olivia||19800101|F"


def message(*lines, control="LAB0001", sent="20240301101500", pid=PID, kind="ORU^R01") -> str:
    return "\r".join([f"MSH|^~\\&|WinPath|RRV|CARERECORD|LCR|{sent}||{kind}|{control}|P|2.4", pid, *lines])


def obr(number=1, *, order="24U000001", test="FBC^Full blood count^WinPath", collected="202403010900", ended="",
        reported="202403011000", status="F", parent="", placer="PLC1") -> str:  # fmt: skip
    fields = ["OBR", str(number), placer, order, test, "", "", collected, ended] + [""] * 18
    fields[22], fields[25], fields[26] = reported, status, parent
    return "|".join(fields).rstrip("|")


def obx(number, kind, test, value, unit="", ranges="", flag="", status="F", sub="", when="") -> str:
    return "|".join(["OBX", str(number), kind, test, sub, value, unit, ranges, flag, "", "", status, "", "", when])


@pytest.fixture
def lab(db):
    return factories.OrganisationFactory(ods_code="RRV", name="Riverside Hospital", kind=Organisation.Kind.ACUTE_TRUST)


@pytest.fixture
def feed(lab):
    return Feed.objects.create(organisation=lab, name="WinPath pathology")


def convert(raw: str, feed):
    return oru.convert(segments.parse(raw), feed)


def apply(raw: str, feed):
    """Convert and import as one transaction, as feeds.receive does; the import must succeed."""
    conversion = convert(raw, feed)
    report = ingest(
        read(json.dumps(conversion.bundle).encode()),
        organisation=feed.organisation,
        channel=Channel(command="hl7", source="test"),
    )
    assert report.applied, [(issue.diagnostics, issue.expression) for issue in report.errors]
    return report


def statuses(report) -> dict[str, set]:
    return {kind: set(counter) for kind, counter in report.counts().items()}


def only_value(**filters) -> Observation:
    return Observation.objects.get(**filters)


def resource(conversion, kind: str, index: int = 0) -> dict:
    return [e["resource"] for e in conversion.bundle["entry"] if e["resource"]["resourceType"] == kind][index]


# --- values (H-10) ------------------------------------------------------------------------------------------------


@pytest.mark.hazard("H-10")
def test_a_number_keeps_its_unit_as_sent_and_a_ucum_code_only_when_the_unit_is_ucum(feed):
    apply(
        message(
            obr(),
            obx(1, "NM", "FE^Iron^Winpath", "21.6", "umol/L", "6.6-26.0"),
            obx(2, "NM", "WCC^White cell count^Winpath", "10.04", "x10\\S\\9/L", "3.0-10.0", "H"),
            obx(3, "NM", "ALP^Alkaline phosphatase^Winpath", "104", "IU/L", "35-104"),
        ),
        feed,
    )
    iron = only_value(code="FE")
    assert (iron.value, iron.unit, iron.unit_system, iron.unit_code) == (Decimal("21.6"), "umol/L", UCUM, "umol/L")
    assert iron.display_value == "21.6 µmol/L"
    assert (iron.reference_low, iron.reference_high) == (Decimal("6.6"), Decimal("26.0"))
    white = only_value(code="WCC")
    assert (white.unit, white.unit_code, white.flag) == ("x10^9/L", "", "H")
    assert only_value(code="ALP").unit_code == ""  # "IU/L" is not UCUM ([IU]/L): shown as sent, never coded


@pytest.mark.hazard("H-10")
def test_a_value_with_a_comparator_is_never_shown_as_the_bare_number(feed):
    apply(
        message(
            obr(),
            obx(1, "NM", "CRP^C-reactive protein^Winpath", "<7", "mg/L"),
            obx(2, "NM", "EGFR^eGFR^Winpath", ">90", "mL/min/{1.73_m2}"),
            obx(3, "SN", "TITRE^Titre^Winpath", "^1^:^128"),
            obx(4, "SN", "GLU^Glucose^Winpath", "^182", "mg/dL"),
            obx(5, "SN", "TROP^Troponin^Winpath", "<^5", "ng/L"),
        ),
        feed,
    )
    crp = only_value(code="CRP")
    assert (crp.value, crp.display_value) == (None, "<7 mg/L")
    assert only_value(code="EGFR").display_value == ">90 mL/min/{1.73_m2}"
    assert only_value(code="TITRE").display_value == "1:128"
    glucose = only_value(code="GLU")
    assert (glucose.value, glucose.unit_code) == (Decimal("182"), "mg/dL")
    assert only_value(code="TROP").display_value == "<5 ng/L"


def test_text_values_keep_their_line_breaks_and_escapes(feed):
    conversion = convert(
        message(
            obr(),
            obx(1, "FT", "COM^Comment^Winpath", "Haemolysed\\.br\\sample~Repeat advised \\T\\ sent"),
            obx(2, "ST", "UWBC^White blood cells^Winpath", "Numerous"),
            obx(3, "TX", "MIC^Microscopy^Winpath", "No casts seen"),
        ),
        feed,
    )
    assert resource(conversion, "Observation", 0)["valueString"] == "Haemolysed\nsample\nRepeat advised & sent"
    assert resource(conversion, "Observation", 1)["valueString"] == "Numerous"
    assert resource(conversion, "Observation", 2)["valueString"] == "No casts seen"


def test_coded_values_keep_their_codes_in_their_systems(feed):
    apply(
        message(
            obr(test="URNC^Urine culture^WinPath"),
            obx(1, "CE", "ORG^Organism^Winpath", "KLEOXY^Klebsiella oxytoca"),
            obx(2, "CWE", "94316-7^SARS-CoV-2 N gene^LN", "260415000^Not detected^SCT"),
        ),
        feed,
    )
    organism = only_value(code="ORG")
    assert organism.value_text == "Klebsiella oxytoca"
    conversion = convert(
        message(obr(), obx(1, "CWE", "94316-7^SARS-CoV-2 N gene^LN", "260415000^Not detected^SCT")), feed
    )
    observation = resource(conversion, "Observation")
    assert observation["valueCodeableConcept"] == {
        "coding": [{"system": "http://snomed.info/sct", "code": "260415000", "display": "Not detected"}],
        "text": "Not detected",
    }
    assert observation["code"]["coding"] == [{"system": LOINC, "code": "94316-7", "display": "SARS-CoV-2 N gene"}]


@pytest.mark.hazard("H-09")
def test_a_date_value_is_the_date_sent_at_its_precision(feed):
    conversion = convert(message(obr(), obx(1, "DT", "ONSET^Symptom onset^Winpath", "20240225")), feed)
    assert resource(conversion, "Observation")["valueString"] == "2024-02-25"


def test_no_value_says_so_and_a_result_that_cannot_be_obtained_says_why(feed):
    apply(
        message(
            obr(),
            obx(1, "NM", "B12^Vitamin B12^Winpath", "", "ng/L"),
            obx(2, "NM", "FOL^Folate^Winpath", "", "ug/L", status="X"),
        ),
        feed,
    )
    assert only_value(code="B12").display_value == "No value given"
    assert only_value(code="FOL").display_value == "Result cannot be obtained"


@pytest.mark.parametrize(
    ("line", "location", "code"),
    [
        (obx(2, "NM", "K^Potassium^Winpath", "?7", "mmol/L"), "OBX[2]-5", "102"),
        (obx(2, "SN", "K^Potassium^Winpath", "<^x"), "OBX[2]-5", "102"),
        (obx(2, "", "K^Potassium^Winpath", "4.1"), "OBX[2]-2", "101"),
        (obx(2, "NM", "K^Potassium^Winpath", "4.1", status="?"), "OBX[2]-11", "103"),
        (obx(2, "NM", "K^Potassium^Winpath", "4.1", status=""), "OBX[2]-11", "103"),
        (obx(2, "NM", "K^Potassium^Winpath", "", status="U"), "OBX[2]-5", "101"),
        (obx(2, "NM", "K^Potassium^Winpath", "4.1", when="2024-03-01"), "OBX[2]-14", ""),
    ],
)
@pytest.mark.hazard("H-10")
def test_a_value_that_cannot_be_read_refuses_the_message_naming_the_field(feed, line, location, code):
    with pytest.raises(Invalid) as refused:
        convert(message(obr(), obx(1, "NM", "NA^Sodium^Winpath", "140", "mmol/L"), line), feed)
    assert refused.value.location == location
    assert getattr(refused.value, "code", "") == code


def test_a_value_type_carerecord_does_not_take_is_not_accepted(feed):
    with pytest.raises(NotAccepted, match="type ED"):
        convert(message(obr(), obx(1, "ED", "PDF^Report^Winpath", "^application^pdf^Base64^JVBERi0=")), feed)


# --- ranges and flags -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sent", "low", "high", "text", "shown"),
    [
        ("35-104", "35", "104", "", "35 to 104 IU/L"),
        ("3.5–5.0", "3.5", "5.0", "", "3.5 to 5 IU/L"),
        ("-2 - 2", "-2", "2", "", "-2 to 2 IU/L"),
        ("<7.2", None, "7.2", "<7.2", "up to 7.2 IU/L (<7.2)"),
        (">60", "60", None, ">60", "at least 60 IU/L (>60)"),
        ("0-2-7.2", None, None, "0-2-7.2", "0-2-7.2"),
        ("NEGATIVE", None, None, "NEGATIVE", "NEGATIVE"),
    ],
)
@pytest.mark.hazard("H-10")
def test_reference_ranges_as_numbers_where_they_are_and_as_sent_otherwise(feed, sent, low, high, text, shown):
    apply(message(obr(), obx(1, "NM", "ALP^Alkaline phosphatase^Winpath", "50", "IU/L", sent)), feed)
    value = only_value(code="ALP")
    assert value.reference_low == (Decimal(low) if low else None)
    assert value.reference_high == (Decimal(high) if high else None)
    assert (value.reference_text, value.reference_range) == (text, shown)


@pytest.mark.parametrize(
    ("flag", "stored", "words"),
    [
        ("H", "H", "High"),
        ("HH", "H", "Critical high"),
        ("LL", "L", "Critical low"),
        ("A", "A", "Abnormal"),
        ("N", "", "Normal"),
        ("R", "", "Resistant"),
        ("S", "", "Susceptible"),
        ("HI", "H", "High"),  # an older sender's word for H
        ("*", "", "*"),  # not a table 0078 flag: kept as the sender's word, never guessed
        ("", "", ""),
    ],
)
@pytest.mark.hazard("H-10")
def test_abnormal_flags_become_interpretations(feed, flag, stored, words):
    apply(message(obr(), obx(1, "NM", "K^Potassium^Winpath", "6.9", "mmol/L", "3.5-5.3", flag)), feed)
    value = only_value(code="K")
    assert (value.flag, value.interpretation) == (stored, words)


# --- notes ------------------------------------------------------------------------------------------------------


def test_notes_after_a_result_are_its_note_and_shown_in_the_reports_conclusion(feed):
    raw = message(
        obr(),
        "NTE|1||Sample received late",
        obx(1, "NM", "SFOL^Serum folate^Winpath", "17.6", "ug/L", "4.6-18.7"),
        "NTE|1||Folate result assumes no folic acid supplement",
        "NTE|2||on day of sampling",
        obx(2, "NM", "B12^Vitamin B12^Winpath", "702", "ng/L"),
        "NTE|1||Results telephoned to",
        "ADD|ward 10",
    )
    conversion = convert(raw, feed)
    folate = resource(conversion, "Observation", 0)
    assert folate["note"] == [{"text": "Folate result assumes no folic acid supplement\non day of sampling"}]
    apply(raw, feed)
    assert Result.objects.get().conclusion == (
        "Sample received late\n"
        "Serum folate: Folate result assumes no folic acid supplement\non day of sampling\n"
        "Vitamin B12: Results telephoned to\nward 10"
    )


# --- status, order and duplicates (H-14) ------------------------------------------------------------------------


@pytest.mark.hazard("H-14")
def test_preliminary_then_final_then_corrected_replace_and_never_duplicate(feed):
    def send(status, value, reported, control):
        line = obx(1, "NM", "HB^Haemoglobin^Winpath", value, "g/L", "115-165", status=status)
        return apply(message(obr(status=status, reported=reported), line, control=control), feed)

    send("P", "101", "202403011000", "L1")
    assert (Result.objects.get().status, only_value(code="HB").value) == ("preliminary", Decimal("101"))
    send("F", "102", "202403011100", "L2")
    assert (Result.objects.get().status, only_value(code="HB").value) == ("final", Decimal("102"))
    send("C", "120", "202403021100", "L3")
    assert (Result.objects.get().status, only_value(code="HB").value) == ("corrected", Decimal("120"))
    assert (Result.objects.count(), Observation.objects.count()) == (1, 1)


@pytest.mark.hazard("H-14")
def test_an_older_report_arriving_late_changes_nothing(feed):
    final = obx(1, "NM", "HB^Haemoglobin^Winpath", "102", "g/L", status="F")
    apply(message(obr(status="F", reported="202403011100"), final, control="L2"), feed)
    preliminary = message(
        obr(status="P", reported="202403011000"), obx(1, "NM", "HB^Haemoglobin^Winpath", "101", "g/L", status="P")
    )
    kept = ReceivedResource.objects.count()
    late = apply(preliminary, feed)
    assert statuses(late)["DiagnosticReport"] == {"unchanged"}
    assert (Result.objects.get().status, only_value(code="HB").value) == ("final", Decimal("102"))
    assert ReceivedResource.objects.count() == kept  # not kept as a newer version either


@pytest.mark.hazard("H-14")
def test_the_same_message_again_changes_nothing(feed):
    raw = message(obr(), obx(1, "NM", "HB^Haemoglobin^Winpath", "120", "g/L", "115-165"), "NTE|1||Checked")
    apply(raw, feed)
    kept = ReceivedResource.objects.count()
    again = apply(raw, feed)
    assert statuses(again) == {
        "Patient": {"unchanged"},
        "DiagnosticReport": {"unchanged"},
        "Observation": {"unchanged"},
    }
    assert (ReceivedResource.objects.count(), Result.objects.count(), Observation.objects.count()) == (kept, 1, 1)


@pytest.mark.hazard("H-14")
def test_a_result_renumbered_when_a_test_is_added_is_the_same_result(feed):
    """WinPath renumbers OBX-1 when a test joins a report (UCLH's LabDuplicateResultSegment): the key is the test,
    its sub-id and its place among that test's results, never the set id."""
    raw = (FIXTURES / "uclh" / "LabOrders_winpath_LabDuplicateResultSegment.txt").read_text()
    first, second = (_with_pid(text) for text in segments.split(raw))
    apply(first, feed)
    assert sorted(Observation.objects.values_list("code", "value")) == [
        ("ALB", Decimal("37")),
        ("ALP", Decimal("108")),  # sent twice, whole, in one OBR: one result
        ("BILI", Decimal("5")),
    ]
    apply(second, feed)
    assert sorted(Observation.objects.values_list("code", "value")) == [
        ("ALB", Decimal("37")),
        ("ALP", Decimal("108")),
        ("ALP", Decimal("110")),  # two different ALP results in one OBR: both kept, as sent
        ("ALT", Decimal("58")),
        ("BILI", Decimal("5")),
    ]
    assert Result.objects.get().status == "final"


@pytest.mark.hazard("H-14")
def test_a_deleted_result_is_withdrawn_from_its_report(feed):
    potassium = "K^Potassium^Winpath"
    apply(message(obr(), obx(1, "NM", potassium, "6.9", "mmol/L"), obx(2, "NM", "NA^Sodium^Winpath", "140")), feed)
    apply(message(obr(reported="202403011200"), obx(1, "NM", potassium, "", status="D"), control="L2"), feed)
    assert list(Observation.objects.values_list("code", flat=True)) == ["NA"]


@pytest.mark.hazard("H-14")
def test_a_cancelled_report_is_withdrawn(feed, clinician):
    apply(message(obr(status="P"), obx(1, "NM", "HB^Haemoglobin^Winpath", "101", "g/L", status="P")), feed)
    apply(message(obr(status="X", reported="202403011200"), control="L2"), feed)
    assert Result.objects.get().entered_in_error


@pytest.mark.parametrize(
    ("sent", "status"),
    [("P", "preliminary"), ("F", "final"), ("C", "corrected"), ("A", "partial"), ("R", "partial"), ("I", "registered"),
     ("S", "registered"), ("", "unknown")],
)  # fmt: skip
def test_report_status_from_obr_25(feed, sent, status):
    apply(message(obr(status=sent), obx(1, "NM", "HB^Haemoglobin^Winpath", "101", "g/L", status="P")), feed)
    assert Result.objects.get().status == status


def test_an_unknown_report_status_is_invalid(feed):
    with pytest.raises(Invalid) as refused:
        convert(message(obr(status="Q"), obx(1, "NM", "HB^Haemoglobin^Winpath", "101")), feed)
    assert refused.value.location == "OBR[1]-25"


# --- dates (H-09) -----------------------------------------------------------------------------------------------


@pytest.mark.hazard("H-09")
def test_collected_and_reported_times_are_london_local_times(feed):
    apply(
        message(
            obr(collected="202407010915", reported="202407011430"),
            obx(1, "NM", "HB^Haemoglobin^Winpath", "120", "g/L"),
            obx(2, "NM", "GLU^Glucose^Winpath", "5.1", "mmol/L", when="202407010700"),
        ),
        feed,
    )
    report = Result.objects.get()
    assert report.effective_at == datetime.datetime(2024, 7, 1, 9, 15, tzinfo=LONDON)  # BST: 08:15 UTC
    assert report.recorded_at == datetime.datetime(2024, 7, 1, 14, 30, tzinfo=LONDON)
    # a result's own time (OBX-14), else its specimen's collection time (HL7: OBX-14 defaults to OBR-7)
    assert only_value(code="HB").effective_at == datetime.datetime(2024, 7, 1, 9, 15, tzinfo=LONDON)
    assert only_value(code="GLU").effective_at == datetime.datetime(2024, 7, 1, 7, 0, tzinfo=LONDON)


@pytest.mark.hazard("H-09")
def test_a_date_without_a_time_stays_a_date_and_the_end_time_stands_in_for_a_missing_collection_time(feed):
    conversion = convert(message(obr(collected="20240301", reported=""), obx(1, "NM", "HB^Hb^Winpath", "1")), feed)
    report = resource(conversion, "DiagnosticReport")
    assert report["effectiveDateTime"] == "2024-03-01"
    assert "issued" not in report
    conversion = convert(message(obr(collected="", ended="202401151030"), obx(1, "NM", "HB^Hb^Winpath", "1")), feed)
    assert resource(conversion, "DiagnosticReport")["effectiveDateTime"] == "2024-01-15T10:30:00+00:00"
    assert resource(conversion, "Observation")["effectiveDateTime"] == "2024-01-15T10:30:00+00:00"


# --- codes ------------------------------------------------------------------------------------------------------


@pytest.mark.hazard("H-10")
def test_a_mapped_code_goes_first_and_the_local_code_is_kept(feed, lab):
    CodeMapping.objects.create(organisation=lab, local_code="ALP", system=LOINC, code="6768-6", display="ALP [U/L]")
    apply(message(obr(), obx(1, "NM", "ALP^Alkaline phosphatase^Winpath", "104", "IU/L")), feed)
    value = Observation.objects.get()
    assert (value.code_system, value.code) == (LOINC, "6768-6")
    local = "https://carerecord.example/id/RRV/CodeSystem/winpath"
    assert value.codings == [
        {"system": LOINC, "code": "6768-6", "display": "ALP [U/L]"},
        {"system": local, "code": "ALP", "display": "Alkaline phosphatase"},
    ]
    assert value.name == "Alkaline phosphatase"


def test_a_results_trend_joins_two_laboratories_where_their_codes_map(patient, clinician):
    """The results trend is drawn by the record's code (the first coded coding): a mapped LOINC code goes first,
    so one laboratory's "ALP" and another's "ALKP" are one trend."""
    pid = f"PID|1||H1^^^LAB^MR~{patient.nhs_number}^^^NHS^NH||{patient.family_name}^{patient.given_name}||"
    pid += patient.date_of_birth.strftime("%Y%m%d")
    for ods, local, day in (("RAL", "ALP", "01"), ("RRV", "ALKP", "02")):
        organisation = factories.OrganisationFactory(ods_code=ods, kind=Organisation.Kind.ACUTE_TRUST)
        CodeMapping.objects.create(organisation=organisation, local_code=local, system=LOINC, code="6768-6")
        feed = Feed.objects.create(organisation=organisation, name=f"{ods} pathology")
        test = f"{local}^Alkaline phosphatase^Lab"
        apply(message(obr(collected=f"202403{day}0900"), obx(1, "NM", test, "104", "IU/L"), pid=pid), feed)
    trend = record.test_history(patient, decide(clinician, patient), "6768-6")
    assert sorted(value.result.source_organisation.ods_code for value in trend) == ["RAL", "RRV"]


# --- the patient ------------------------------------------------------------------------------------------------


@pytest.mark.hazard("H-06")
def test_a_hospital_number_alone_is_held_until_a_message_teaches_it(feed):
    lone = message(obr(), obx(1, "NM", "HB^Haemoglobin^Winpath", "120", "g/L"), pid=PID_HOSPITAL_NUMBER_ONLY)
    with pytest.raises(Held) as held:
        convert(lone, feed)
    assert held.value.local_id == "MRENTR-40800123"
    apply(message(obr(order="24U000000"), obx(1, "NM", "NA^Sodium^Winpath", "140"), control="L0"), feed)
    apply(lone, feed)
    assert Result.objects.filter(observations__code="HB").get().patient.nhs_number == NHS


# --- microbiology -----------------------------------------------------------------------------------------------


def test_a_culture_with_isolates_and_their_sensitivities(feed):
    raw = _with_pid((FIXTURES / "uclh" / "LabOrders_winpath_Sensitivity.txt").read_text())
    apply(raw, feed)
    assert sorted(Result.objects.values_list("name", flat=True)) == [
        "Sensitivities (ISOLATE 1: Klebsiella oxytoca)",
        "Sensitivities (ISOLATE 2: Proteus mirabilis)",
        "URINE CULTURE",
        "URINE MICROSCOPY",
    ]
    culture = Result.objects.get(name="URINE CULTURE")
    assert sorted(culture.observations.values_list("name", "value_text")) == [
        ("ISOLATE (1)", "10,000 - 100,000 CFU/mL"),
        ("ISOLATE (1)", "Klebsiella oxytoca"),
        ("ISOLATE (2)", "10,000 - 100,000 CFU/mL"),
        ("ISOLATE (2)", "Proteus mirabilis"),
        ("STATUS", "COMPLETE: 14/07/19"),
        ("URINE CULTURE", "URINE CULTURE REPORT"),
    ]
    second = Result.objects.get(name__startswith="Sensitivities (ISOLATE 2")
    assert sorted(second.observations.values_list("name", "interpretation")) == [
        ("Amikacin", "Susceptible"),
        ("Amoxicillin", "Susceptible"),
        ("Fosfomycin", "Resistant"),
        ("Gentamicin", "Intermediate"),
        ("Nitrofurantoin", "Resistant"),
    ]
    assert statuses(apply(raw, feed)) == {
        "Patient": {"unchanged"},
        "DiagnosticReport": {"unchanged"},
        "Observation": {"unchanged"},
    }


def test_two_sensitivities_reports_for_one_isolate_are_kept_apart(feed):
    apply(_with_pid((FIXTURES / "uclh" / "LabOrders_winpath_isolate_multiple_orders.txt").read_text()), feed)
    sensitivities = Result.objects.filter(name__startswith="Sensitivities").order_by("pk")
    assert [list(r.observations.values_list("name", flat=True).order_by("name")) for r in sensitivities] == [
        ["Amikacin", "Amoxi/Clav.acid", "Amoxicillin", "Gentamicin", "Nitrofurantoin"],
        ["Fluconazole"],
    ]


# --- refused ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lines", "location"),
    [
        ([obx(1, "NM", "HB^Hb^Winpath", "1")], "OBX[1]"),
        (["ORC|RE|PLC9|24U000001", obr(placer="PLC1"), obx(1, "NM", "HB^Hb^Winpath", "1")], "OBR[1]-2"),
        (["ORC|RE|PLC1|24U000009", obr(), obx(1, "NM", "HB^Hb^Winpath", "1")], "OBR[1]-3"),
        (["ORC|NW|PLC1|24U000001", obr(), obx(1, "NM", "HB^Hb^Winpath", "1")], "ORC[1]-1"),
        ([obr(order="", placer=""), obx(1, "NM", "HB^Hb^Winpath", "1")], "OBR[1]-3"),
        ([obr(test=""), obx(1, "NM", "HB^Hb^Winpath", "1")], "OBR[1]-4"),
        (["NTE|1||no report"], "OBR"),
        ([obr(collected="20240230")], "OBR[1]-7"),
    ],
)
def test_a_message_that_cannot_be_read_as_results_is_invalid_naming_where(feed, lines, location):
    with pytest.raises(Invalid) as refused:
        convert(message(*lines), feed)
    assert refused.value.location == location


def test_orders_and_results_for_two_patients_are_not_accepted(feed):
    with pytest.raises(NotAccepted):
        convert(message(obr(), kind="ORM^O01"), feed)
    with pytest.raises(NotAccepted, match="more than one patient"):
        convert(message(obr(), obx(1, "NM", "HB^Hb^Winpath", "1"), PID, obr(2, order="24U000002")), feed)


# --- through the pipeline (feeds.receive) -----------------------------------------------------------------------


@pytest.mark.hazard("H-18")
def test_through_the_pipeline_applied_once_then_unchanged(feed):
    raw = message(obr(), obx(1, "NM", "HB^Haemoglobin^Winpath", "120", "g/L", "115-165"))
    reply = receive(raw, feed=feed, peer="127.0.0.1")
    assert (reply.code, reply.message.status) == ("AA", Message.Status.APPLIED)
    kept = ReceivedResource.objects.count()
    again = receive(raw, feed=feed, peer="127.0.0.1")
    assert (again.code, again.message.status) == ("AA", Message.Status.APPLIED)
    assert (ReceivedResource.objects.count(), Result.objects.count(), Observation.objects.count()) == (kept, 1, 1)


@pytest.mark.hazard("H-18")
def test_through_the_pipeline_held_then_invalid_keeps_the_message_and_nothing_of_it(feed):
    held = receive(
        message(obr(), obx(1, "NM", "HB^Hb^Winpath", "120"), pid=PID_HOSPITAL_NUMBER_ONLY), feed=feed, peer="lab"
    )
    assert (held.code, held.message.status, held.message.local_id) == ("AA", Message.Status.HELD, "MRENTR-40800123")
    bad = receive(
        message(obr(), obx(1, "NM", "NA^Sodium^Winpath", "140"), obx(2, "NM", "K^K^Winpath", "?7")),
        feed=feed,
        peer="lab",
    )
    assert (bad.code, bad.message.status, bad.message.error_location) == ("AE", Message.Status.INVALID, "OBX[2]-5")
    assert "ERR|" in bad.ack and "OBX^2^5" in bad.ack
    assert not Result.objects.exists()


@pytest.mark.hazard("H-18")
def test_a_held_result_is_applied_when_a_later_message_teaches_its_hospital_number(feed):
    lone = message(obr(), obx(1, "NM", "HB^Haemoglobin^Winpath", "120", "g/L"), pid=PID_HOSPITAL_NUMBER_ONLY)
    held = receive(lone, feed=feed, peer="lab")
    assert held.message.status == Message.Status.HELD
    teaching = message(obr(order="24U000000"), obx(1, "NM", "NA^Sodium^Winpath", "140"), control="L0")
    reply = receive(teaching, feed=feed, peer="lab")
    assert [row.pk for row in reply.retried] == [held.message.pk]
    held.message.refresh_from_db()
    assert held.message.status == Message.Status.APPLIED
    assert sorted(Observation.objects.values_list("code", flat=True)) == ["HB", "NA"]


def _with_pid(raw: str) -> str:
    """A UCLH fixture with our synthetic patient's PID (NHS number and date of birth) in place of its own, which
    carries only the hospital number and no date of birth: held until a link is learned."""
    return "\r".join(PID if line.startswith("PID") else line for line in segments.normalise(raw).split("\r"))
