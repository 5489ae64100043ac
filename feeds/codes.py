"""Codes in HL7 v2 results: which coding system a CE/CWE's system name (table 0396) means, the URI of a sender's own
code system, the national code (SNOMED CT / LOINC) IG mapped a laboratory's local test code to (`CodeMapping`), and
whether a unit as sent is UCUM.

A local code is always kept, in the sender's own system; a mapped national code is added before it (never in its
place), so that the record's `code` (the first coded coding, which a results trend is drawn by) is the national
one and a trend joins the same test from two laboratories. The mapping is read in one query per message.
"""

import re
from collections.abc import Iterable

from fhirapi.references import sender_system
from fhirapi.systems import LOINC, SNOMED, UCUM

from .models import CodeMapping

# HL7 table 0396 (coding system) names, and what senders write instead, for systems carerecord recognises.
SYSTEMS = {
    "LN": LOINC,
    "LNC": LOINC,
    "LOINC": LOINC,
    "SCT": SNOMED,
    "SNM": SNOMED,
    "SNOMED": SNOMED,
    "SNOMEDCT": SNOMED,
    "SCTID": SNOMED,
    "UCUM": UCUM,
    "I10": "http://hl7.org/fhir/sid/icd-10",
    "ICD10": "http://hl7.org/fhir/sid/icd-10",
    "NULLFL": "http://terminology.hl7.org/CodeSystem/v3-NullFlavor",
}
_HL7_TABLE = re.compile(r"HL7(\d{4})\Z", re.IGNORECASE)  # HL70136: HL7's own table 0136 (yes/no)
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def system_uri(name: str, organisation) -> str:
    """The FHIR system for a CE/CWE's coding system name: LOINC, SNOMED CT, UCUM, an HL7 table; anything else
    (WinPath's "Winpath", "L", "99zzz", nothing at all) is the sender's own code system, named for it."""
    name = (name or "").strip()
    if name.upper() in SYSTEMS:
        return SYSTEMS[name.upper()]
    if table := _HL7_TABLE.match(name):
        return f"http://terminology.hl7.org/CodeSystem/v2-{table[1]}"
    return local_system(organisation, name)


def local_system(organisation, name: str = "") -> str:
    """The sender's own code system: https://carerecord.example/id/<ODS>/CodeSystem/<name as sent in lower case, or
    "local">."""
    name = _SAFE.sub("-", name.strip().lower()) or "local"  # WinPath writes "WinPath" and "Winpath" for one system
    return sender_system(organisation.ods_code, "CodeSystem") + "/" + name


def mapped(organisation, codes: Iterable[tuple[str, str]]) -> dict[tuple[str, str], dict]:
    """(system name as sent, local code) → the national coding IG mapped it to, for each of `codes` that is mapped:
    a mapping for that system name (compared without case: WinPath writes "WinPath" and "Winpath") before one for
    any system (blank). One query."""
    wanted = {(system or "", code) for system, code in codes if code}
    if not wanted:
        return {}
    exact, anywhere = {}, {}
    rows = CodeMapping.objects.filter(organisation=organisation, local_code__in={code for _, code in wanted})
    for row in rows.values("local_system", "local_code", "system", "code", "display"):
        if row["local_system"]:
            exact[row["local_system"].strip().lower(), row["local_code"]] = row
        else:
            anywhere[row["local_code"]] = row
    found = {}
    for system, code in wanted:
        row = exact.get((system.strip().lower(), code)) or anywhere.get(code)
        if row:
            coding = {"system": row["system"], "code": row["code"]}
            found[system, code] = dict(coding, display=row["display"]) if row["display"] else coding
    return found


# --- UCUM -------------------------------------------------------------------------------------------------------

# The UCUM atoms a laboratory result's unit is made of (case-sensitive UCUM). Deliberately not all of UCUM: an atom
# a lab would not mean is left out, so that a unit written loosely is never coded as something else ("u/l" is
# enzyme units per litre to the lab who wrote it, atomic mass units per litre to UCUM: no code for it).
_METRIC = {
    "m", "s", "g", "L", "l", "mol", "kat", "U", "Pa", "Cel", "K", "eq", "osm", "Hz", "J", "W", "V", "A", "Bq", "Gy",
    "Sv", "N", "bar", "t", "cal", "[IU]", "[iU]", "m[Hg]", "m[H2O]",
}  # fmt: skip
_OTHER = {
    "%", "[ppm]", "[ppb]", "[ppth]", "min", "h", "d", "wk", "mo", "a", "[pH]", "[drp]", "[HPF]", "[LPF]", "[CFU]",
    "[arb'U]", "[USP'U]", "[in_i]", "[ft_i]", "[lb_av]", "[oz_av]", "[degF]", "deg",
}  # fmt: skip
_PREFIXES = {"k", "h", "da", "d", "c", "m", "u", "n", "p", "f", "a", "M", "G", "T"}
_ANNOTATION = re.compile(r"\{[^{}]*\}")
_COMPONENT = re.compile(r"(?P<atom>10\*|10\^|.*?)(?P<exponent>[+-]?\d+)?")


def is_ucum(unit: str) -> bool:
    """Whether a unit as sent is a valid UCUM expression ("umol/L", "10*9/L", "mL/min/{1.73_m2}", "mm[Hg]"): only
    then is it given as a UCUM code beside the words. "x10^9/L", "IU/L", "Ratio", "mg/dl " are shown as sent."""
    unit = unit or ""
    if not unit or unit != unit.strip() or " " in unit or "(" in unit:
        return False
    body = _ANNOTATION.sub("{}", unit[1:] if unit.startswith("/") else unit)  # "{1.73_m2}": its "." is no operator
    return all(_component(part) for part in re.split(r"[./]", body))


def _component(part: str) -> bool:
    if not part:
        return False
    if _ANNOTATION.fullmatch(part) or part.isdigit():
        return True  # "{cells}", a factor
    annotation = _ANNOTATION.search(part)
    if annotation and annotation.end() == len(part):
        part = part[: annotation.start()]
    match = _COMPONENT.fullmatch(part)
    atom, exponent = match["atom"], match["exponent"]
    if atom in ("10*", "10^"):
        return exponent is not None
    return _atom(atom)


def _atom(atom: str) -> bool:
    if atom in _METRIC or atom in _OTHER:
        return True
    return any(atom.startswith(prefix) and atom[len(prefix) :] in _METRIC for prefix in _PREFIXES)
