"""Units as clinicians write them: UCUM's plain-ASCII spellings never reach the page."""

from decimal import Decimal

import pytest

from patients.models import Observation
from patients.units import SHOWN, UCUM, display_unit, with_unit

pytestmark = pytest.mark.hazard("H-10")


@pytest.mark.parametrize(
    "code, shown",
    [
        ("umol/L", "µmol/L"),
        ("10*9/L", "×10⁹/L"),
        ("10*12/L", "×10¹²/L"),
        ("10^9/L", "×10⁹/L"),
        ("10*3/uL", "×10³/µL"),
        ("mm[Hg]", "mmHg"),
        ("cm[H2O]", "cmH₂O"),
        ("/min", "/min"),
        ("{beats}/min", "beats/min"),
        ("Cel", "°C"),
        ("[degF]", "°F"),
        ("kg/m2", "kg/m²"),
        ("m2", "m²"),
        ("mL/min/{1.73_m2}", "mL/min/1.73m²"),
        ("mL/min/1.73m2", "mL/min/1.73m²"),
        ("{cells}/uL", "cells/µL"),
        ("[IU]/L", "IU/L"),
        ("m[IU]/L", "mIU/L"),
        ("%", "%"),
        ("mmol/L", "mmol/L"),
        ("mmol/mol", "mmol/mol"),
        ("g/L", "g/L"),
        ("ug/L", "µg/L"),
        ("mU/L", "mU/L"),
        ("kg", "kg"),
        ("cm", "cm"),
        ("[in_i]", "in"),
        ("{score}", "score"),
    ],
)
def test_ucum_codes_are_shown_as_clinicians_write_them(code, shown):
    assert display_unit("", code, UCUM) == shown
    assert display_unit(code, "", "") == shown  # the same spelling sent as text only


def test_a_ucum_code_is_shown_rather_than_the_sources_words_unless_it_is_only_an_annotation():
    """As UK Core's examples send them: "millimeter of mercury" with mm[Hg], "{ScoreOf}" with "ScoreOf"."""
    assert display_unit("millimeter of mercury", "mm[Hg]", UCUM) == "mmHg"
    assert display_unit("millimoles per litre", "mmol/L", UCUM) == "mmol/L"
    assert display_unit("litre per minute", "L/min", UCUM) == "L/min"
    assert display_unit("per day", "/d", UCUM) == "/day"
    assert display_unit("beats/minute", "/min", UCUM) == "/min"
    assert display_unit("ScoreOf", "{ScoreOf}", UCUM) == "ScoreOf"
    assert display_unit("", "{score}", UCUM) == "score"
    assert display_unit("ratio", "1", UCUM) == "ratio" and display_unit("", "1", UCUM) == ""


def test_a_unit_in_another_system_is_shown_as_the_source_sent_it():
    assert display_unit("", "umol/L", "http://example.org/local-units") == "umol/L"
    assert display_unit("capsule", "732937005", "http://snomed.info/sct") == "capsule"
    assert display_unit("", "", "") == ""


def test_words_are_not_mangled():
    for text in ("units", "mmol/L", "cells/mm3", "Cel sius", "puffs", "mug", "tablets"):
        assert display_unit(text) == text


@pytest.mark.parametrize(
    "unit",
    ["x10^9/L", "x10\\S\\9/L", "u/l", "mg/dl", "IU/L", "mcg/dL", "10*/L", "umol/(24.h)", "{copies}/[HPF]", "PER HPF"],
)
def test_a_unit_outside_the_mapping_is_shown_exactly_as_sent(unit):
    """No rule guesses at a unit it does not know: HL7 v2's "u/l" (enzyme units) never becomes micro-anything,
    "x10^9/L" never gains a second multiplication sign."""
    assert display_unit(unit) == unit
    assert display_unit("", unit, UCUM) == unit  # coded as UCUM but not in the mapping: the code as sent
    assert display_unit("words the source wrote", unit, UCUM) == unit


def test_every_mapped_unit_is_a_ucum_spelling_that_reads_differently():
    """The mapping only rewrites: nothing in it is a no-op, and no shown form is itself a key (so showing is
    never applied twice to different effect)."""
    assert all(code != shown for code, shown in SHOWN.items())
    assert not set(SHOWN.values()) & set(SHOWN)


def test_a_percentage_and_a_rate_take_no_space():
    assert with_unit("98", "%") == "98%" and with_unit("72", "/min") == "72/min"
    assert with_unit("120", "mmHg") == "120 mmHg" and with_unit("7", "") == "7"
    assert with_unit("7.2", display_unit("", "10*9/L", UCUM)) == "7.2 ×10⁹/L"


def observation(**fields):
    """Unsaved, so every field the database would default is given."""
    blank = dict.fromkeys(("unit", "unit_code", "unit_system", "reference_text", "interpretation"), "")
    return Observation(name="x", **{**blank, **fields})


@pytest.mark.parametrize(
    "fields, value, reference",
    [
        (
            {
                "value": Decimal("85.0000"),
                "unit": "umol/L",
                "unit_code": "umol/L",
                "unit_system": UCUM,
                "reference_low": Decimal("59"),
                "reference_high": Decimal("104"),
            },
            "85 µmol/L",
            "59 to 104 µmol/L",
        ),
        ({"value": Decimal("7.2"), "unit_code": "10*9/L", "unit_system": UCUM}, "7.2 ×10⁹/L", ""),
        ({"value": Decimal("37.5"), "unit_code": "Cel", "unit_system": UCUM}, "37.5 °C", ""),
        ({"value": Decimal("97"), "unit": "%", "reference_low": Decimal("94")}, "97%", "at least 94%"),
        ({"value": Decimal("3"), "unit": "mmol/L", "reference_high": Decimal("5")}, "3 mmol/L", "up to 5 mmol/L"),
        ({"value_text": "Never smoked", "reference_text": "Not applicable"}, "Never smoked", "Not applicable"),
        (
            {
                "value": Decimal("6"),
                "unit": "mmol/L",
                "reference_low": Decimal("4"),
                "reference_high": Decimal("7"),
                "reference_text": "fasting",
            },
            "6 mmol/L",
            "4 to 7 mmol/L (fasting)",
        ),
    ],
)
def test_an_observations_value_and_range_carry_the_proper_unit(fields, value, reference):
    assert (observation(**fields).display_value, observation(**fields).reference_range) == (value, reference)
