"""Small readers the mappers share: concept text, codes, dates, narrative, and the fields every entry has.

Dates: each mapper takes the clinical date (`effective_at`: onset, when given or taken, when it happened) and
the date the source recorded it (`recorded_at`) from the elements that say so, and nothing else: a resource that
gives neither has neither (shown as "Date not recorded"); the time carerecord received it is `created_at`.
"""

import datetime
import re
from zoneinfo import ZoneInfo

from django.conf import settings
from lxml import etree

from ..context import Context
from ..systems import CONFIDENTIALITY, SENSITIVE_CONFIDENTIALITY

_SPACES = re.compile(r"\s+")


def text_of(concept) -> str:
    """What a person would read: the concept's text, else its first coding's display, else its code."""
    if concept is None:
        return ""
    if concept.text:
        return concept.text
    for coding in concept.coding or []:
        if coding.display:
            return coding.display
    for coding in concept.coding or []:
        if coding.code:
            return coding.code
    return ""


def texts_of(concepts) -> list[str]:
    return [text for text in (text_of(concept) for concept in concepts or []) if text]


def code_of(concept) -> tuple[str, str]:
    """(system, code) of the first coding that has a code: kept as the source sent it."""
    for coding in (concept.coding or []) if concept is not None else []:
        if coding.code:
            return coding.system or "", coding.code
    return "", ""


def codings_of(concept) -> list[dict]:
    """Every coding of a concept (an R4B CodeableConcept or its JSON), in the source's order, as the record keeps
    them: {"system", "code", "display"} ("" where the source left one out). SNOMED CT beside dm+d, LOINC beside
    a local code: all of them come back."""
    if concept is None:
        return []
    codings = concept.get("coding") if isinstance(concept, dict) else concept.coding
    kept = []
    for coding in codings or []:
        get = coding.get if isinstance(coding, dict) else lambda name, coding=coding: getattr(coding, name, None)
        fields = {name: get(name) or "" for name in ("system", "code", "display")}
        if any(fields.values()):
            kept.append({name: str(value) for name, value in fields.items()})
    return kept


def codes_in(concept) -> set[str]:
    return {coding.code for coding in (concept.coding or []) if coding.code} if concept is not None else set()


def to_datetime(value) -> datetime.datetime | None:
    """A FHIR date, dateTime or instant as an aware datetime; dates and partial dates start at local midnight."""
    if value is None:
        return None
    if isinstance(value, datetime.datetime):
        return value if value.tzinfo else value.replace(tzinfo=_local())
    if isinstance(value, datetime.date):
        return datetime.datetime.combine(value, datetime.time(), tzinfo=_local())
    parts = str(value).split("-")  # "2023" or "2023-03"
    try:
        year, month = int(parts[0]), int(parts[1]) if len(parts) > 1 else 1
        return datetime.datetime(year, month, 1, tzinfo=_local())
    except ValueError:
        return None


def to_date(value) -> datetime.date | None:
    moment = to_datetime(value)
    if moment is None:
        return None
    return moment.astimezone(_local()).date() if isinstance(value, datetime.datetime) else moment.date()


def _local():
    return ZoneInfo(settings.TIME_ZONE)


def period_start(period):
    return to_datetime(period.start) if period is not None else None


def period_end(period):
    return to_datetime(period.end) if period is not None else None


def first(*values):
    """The first value that is not None (dates: the first the resource has)."""
    return next((value for value in values if value is not None), None)


def is_sensitive(resource) -> bool:
    """Marked restricted or very restricted (meta.security, v3 Confidentiality): only the source sees it."""
    meta = resource.meta
    return bool(
        meta
        and any(
            label.system == CONFIDENTIALITY and label.code in SENSITIVE_CONFIDENTIALITY for label in meta.security or []
        )
    )


def labelled_sensitive(json: dict) -> bool:
    """A kept resource's own meta.security (its JSON) says restricted or very restricted, as `is_sensitive`."""
    meta = json.get("meta") if isinstance(json, dict) else None
    labels = meta.get("security") if isinstance(meta, dict) else None
    return any(
        isinstance(label, dict)
        and label.get("system") == CONFIDENTIALITY
        and label.get("code") in SENSITIVE_CONFIDENTIALITY
        for label in labels or []
    )


def last_updated(resource) -> datetime.datetime | None:
    return to_datetime(resource.meta.lastUpdated) if resource.meta else None


def human_name(names) -> str:
    """'Dr Paul Rastall' from a HumanName list: the official (or first) name, as people are addressed."""
    if not names:
        return ""
    name = next((n for n in names if n.use == "official"), names[0])
    if name.text:
        return name.text
    return " ".join([*(name.prefix or []), *(name.given or []), name.family or ""]).strip()


def narrative(text) -> str:
    """A Narrative's XHTML as plain text (for letter bodies): block elements become line breaks."""
    if text is None or not text.div:
        return ""
    try:
        root = etree.fromstring(str(text.div).encode(), parser=etree.XMLParser(resolve_entities=False))
    except etree.XMLSyntaxError:
        return ""
    for element in root.iter():
        if isinstance(element.tag, str) and etree.QName(element).localname in {"p", "tr", "br", "div", "li", "pre"}:
            element.tail = "\n" + (element.tail or "")
        elif isinstance(element.tag, str) and etree.QName(element).localname in {"th", "td"}:
            element.tail = " " + (element.tail or "")  # "Diagnosis name Acute MI", not "Diagnosis nameAcute MI"
    lines = (_SPACES.sub(" ", line).strip() for line in "".join(root.itertext()).splitlines())
    return "\n".join(line for line in lines if line)


def entry_fields(
    resource, ctx: Context, *, patient, patient_expression: str, effective_at, recorded_at=None, entered_in_error=False
) -> dict:
    """The fields every record entry has. `effective_at` and `recorded_at` are what the resource said, None where
    it said nothing: stored as missing, never filled in with the time of import nor kept from an older version."""
    return {
        "patient_id": ctx.patient_id(patient, patient_expression),
        "source_organisation_id": ctx.organisation.pk,
        "effective_at": effective_at,
        "recorded_at": recorded_at,
        "source_updated_at": last_updated(resource),
        "sensitive": is_sensitive(resource),
        "entered_in_error": entered_in_error,
    }
