"""Units as a clinician reads them: UCUM codes ("umol/L", "10*9/L", "mm[Hg]", "Cel") shown as "µmol/L", "10⁹/L",
"mmHg", "°C".

A source sends a unit as words (FHIR Quantity.unit: "millimeter of mercury", "millimoles per litre") and
usually as a UCUM code (Quantity.system + Quantity.code: "mm[Hg]", "mmol/L"). The code is what it means, and
written the way clinicians write units it is also what they read fastest ("118/94 mmHg", not "118/94
millimeter of mercury"); but in UCUM's plain-ASCII spelling it distorts the value ("umol/L" reads as nothing a
clinician knows, "10*9/L" as a multiplication). So a UCUM code is shown rewritten from that spelling; a code
that is only an annotation ("{ScoreOf}") gives way to the source's words; with no code, the words are shown
(rewritten where they are themselves a UCUM spelling); a unit coded in another system is shown as sent.
"""

import re

UCUM = "http://unitsofmeasure.org"

# Whole units whose UCUM spelling is not how they are written for people.
_WHOLE = {
    "Cel": "°C",
    "/d": "/day",
    "/wk": "/week",
    "/mo": "/month",
    "/a": "/year",
    "d": "days",
    "wk": "weeks",
    "mo": "months",
    "a": "years",
    "h": "hours",
    "[drp]": "drops",
    "[degF]": "°F",
    "m2": "m²",
    "{beats}/min": "beats/min",
    "{breaths}/min": "breaths/min",
    "[in_i]": "in",
    "[lb_av]": "lb",
    "[oz_av]": "oz",
    "[ft_i]": "ft",
    "[stone_av]": "st",
    "mL/min/{1.73_m2}": "mL/min/1.73 m²",
    "mL/min/1.73m2": "mL/min/1.73 m²",
    "[iU]": "IU",
    "[IU]": "IU",
}
_SUPERSCRIPT = str.maketrans("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻")
_POWER_OF_TEN = re.compile(r"10[*^](-?\d+)")
# A leading "u" is UCUM's micro only before a unit it can prefix (umol, ug, uL, uU, uIU, ukat).
_MICRO = re.compile(r"(?<![A-Za-z])u(mol|g|L|l|U|IU|kat|m)(?![A-Za-z])")
_SQUARED = re.compile(r"(?<=[a-z])2(?![0-9])")
_BRACKETS = {"[Hg]": "Hg", "[H2O]": "H₂O", "[iU]": "IU", "[IU]": "IU"}
_ANNOTATION = re.compile(r"\{([^}]*)\}")


def _prettify(text: str) -> str:
    if text in _WHOLE:
        return _WHOLE[text]
    text = _POWER_OF_TEN.sub(lambda m: "10" + m.group(1).translate(_SUPERSCRIPT), text)
    text = _MICRO.sub(r"µ\1", text)
    for ucum, shown in _BRACKETS.items():
        text = text.replace(ucum, shown)
    if "/" in text:  # "kg/m2", "mL/min/m2": a squared unit under a division
        head, _, tail = text.partition("/")
        text = f"{head}/{_SQUARED.sub('²', tail)}"
    return _ANNOTATION.sub(lambda m: m.group(1), text)  # "{cells}/uL" -> "cells/µL"


def display_unit(unit: str = "", unit_code: str = "", unit_system: str = "") -> str:
    """The unit to show beside a value, in the form clinicians write it (see the module's docstring).

    `unit` is the source's words, `unit_code`/`unit_system` the coded unit. (Anything but a string, such as an
    unsaved row's database default, counts as blank.)"""
    unit, unit_code, unit_system = (
        value.strip() if isinstance(value, str) else "" for value in (unit, unit_code, unit_system)
    )
    if unit_system and unit_system != UCUM:
        return unit or unit_code  # a local code means what its source says it means
    if unit_code and not (_ANNOTATION.fullmatch(unit_code) and unit) and unit_code != "1":
        return _prettify(unit_code)
    return _prettify(unit) if unit else ""


def with_unit(value: str, unit: str) -> str:
    """A value and its unit as one reading: "120 mmHg"; "98%" and "72/min" take no space."""
    if not unit:
        return value
    if unit == "%" or unit.startswith("/"):
        return f"{value}{unit}"
    return f"{value} {unit}"
