"""Units as a clinician reads them: UCUM codes ("umol/L", "10*9/L", "mm[Hg]", "Cel") shown as "µmol/L", "×10⁹/L",
"mmHg", "°C".

A source sends a unit as words (FHIR Quantity.unit: "millimeter of mercury", "millimoles per litre") and
usually as a UCUM code (Quantity.system + Quantity.code: "mm[Hg]", "mmol/L"). The code is what it means, and
written the way clinicians write units it is also what they read fastest ("118/94 mmHg", not "118/94
millimeter of mercury"); but in UCUM's plain-ASCII spelling it distorts the value ("umol/L" reads as nothing a
clinician knows, "7.2 10*9/L" as a multiplication). So a UCUM code is shown as `SHOWN` writes it; a code that is
only an annotation ("{ScoreOf}") gives way to the source's words (or, with none, its text); with no code, the
words are shown, through `SHOWN` only where they are exactly one of its UCUM spellings; a unit coded in another
system is shown as sent.

Nothing else is rewritten: a unit not in `SHOWN` is shown exactly as sent ("x10^9/L", "u/l", "mg/dl"), because a
rule that guessed at a unit it did not know could turn one unit into another (HL7 v2's "u/l" is enzyme units,
not micro-anything). A unit that reads badly is one more line here, reviewed as a clinical-safety change (H-10).
"""

import re

UCUM = "http://unitsofmeasure.org"

# UCUM's spelling -> how a clinician writes it. Units already written that way ("mmol/L", "g/L", "U/L", "%",
# "/min", "fL", "mm/h") need no line: they are shown as sent.
SHOWN = {
    # Counts as powers of ten: "×" so the number before it is never read as part of the exponent.
    "10*9/L": "×10⁹/L",
    "10^9/L": "×10⁹/L",
    "10*12/L": "×10¹²/L",
    "10^12/L": "×10¹²/L",
    "10*6/L": "×10⁶/L",
    "10*3/uL": "×10³/µL",
    "10*6/uL": "×10⁶/µL",
    # Micro: UCUM's "u".
    "umol/L": "µmol/L",
    "umol/mmol": "µmol/mmol",
    "umol": "µmol",
    "ug": "µg",
    "ug/L": "µg/L",
    "ug/dL": "µg/dL",
    "ug/mL": "µg/mL",
    "ug/kg": "µg/kg",
    "uL": "µL",
    "um": "µm",
    "uU/mL": "µU/mL",
    "u[IU]/mL": "µIU/mL",
    "ukat/L": "µkat/L",
    "{cells}/uL": "cells/µL",
    # Square brackets and annotations.
    "mm[Hg]": "mmHg",
    "cm[H2O]": "cmH₂O",
    "[IU]": "IU",
    "[iU]": "IU",
    "[IU]/L": "IU/L",
    "[iU]/L": "IU/L",
    "[IU]/mL": "IU/mL",
    "[iU]/mL": "IU/mL",
    "m[IU]/L": "mIU/L",
    "m[iU]/L": "mIU/L",
    "k[IU]/L": "kIU/L",
    "[pH]": "pH",
    "{beats}/min": "beats/min",
    "{breaths}/min": "breaths/min",
    "{copies}/mL": "copies/mL",
    # Squares.
    "m2": "m²",
    "kg/m2": "kg/m²",
    "mg/m2": "mg/m²",
    "mL/min/{1.73_m2}": "mL/min/1.73m²",
    "mL/min/1.73m2": "mL/min/1.73m²",
    # Temperature, imperial measures, drops.
    "Cel": "°C",
    "[degF]": "°F",
    "[in_i]": "in",
    "[ft_i]": "ft",
    "[lb_av]": "lb",
    "[oz_av]": "oz",
    "[stone_av]": "st",
    "[drp]": "drops",
    # Time, as durations and frequencies.
    "/d": "/day",
    "/wk": "/week",
    "/mo": "/month",
    "/a": "/year",
    "d": "days",
    "wk": "weeks",
    "mo": "months",
    "a": "years",
    "h": "hours",
}
_ANNOTATION = re.compile(r"\{([^{}]*)\}")


def display_unit(unit: str = "", unit_code: str = "", unit_system: str = "") -> str:
    """The unit to show beside a value, in the form clinicians write it (see the module's docstring).

    `unit` is the source's words, `unit_code`/`unit_system` the coded unit. (Anything but a string, such as an
    unsaved row's database default, counts as blank.)"""
    unit, unit_code, unit_system = (
        value.strip() if isinstance(value, str) else "" for value in (unit, unit_code, unit_system)
    )
    if unit_system and unit_system != UCUM:
        return unit or unit_code  # a local code means what its source says it means
    if unit_code and unit_code != "1":
        annotation = _ANNOTATION.fullmatch(unit_code)
        if annotation:  # UCUM's unit 1 with a note on what was counted: the words say it better
            return _shown(unit) if unit else annotation.group(1)
        return _shown(unit_code)
    return _shown(unit) if unit else ""


def _shown(text: str) -> str:
    annotation = _ANNOTATION.fullmatch(text)
    if annotation and text not in SHOWN:
        return annotation.group(1)  # "{score}" sent as the words: its text
    return SHOWN.get(text, text)


def with_unit(value: str, unit: str) -> str:
    """A value and its unit as one reading: "120 mmHg"; "98%" and "72/min" take no space."""
    if not unit:
        return value
    if unit == "%" or unit.startswith("/"):
        return f"{value}{unit}"
    return f"{value} {unit}"
