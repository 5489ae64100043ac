"""Immunization -> Immunisation (a vaccination given, or recorded as not given with the reason).

Dates (H-09): the date given is `occurrenceDateTime`; `occurrenceString` ("autumn 2010", "in childhood") is not a
date, so the entry has none ("Date not recorded") and the text is kept in its notes; `recorded` is when the source
wrote it down, kept apart. Codings (H-10): every coding of `vaccineCode` (dm+d beside SNOMED CT) is kept.

What has no column of its own is kept, in words, in the notes: the manufacturer, the amount given, who gave it, the
disease it protects against, a dose the source says was subpotent, a record taken from a secondary source, and the
source's own notes. The resource itself is kept as sent (fhirapi.models.ReceivedResource) and is what a read returns.
"""

import re

from patients.categories import Category
from patients.models import Immunisation
from patients.units import display_unit, with_unit

from ..context import Unmappable
from ..outcome import error
from ..registry import builds, maps, reads
from ..serialise import concept, patient_reference
from .common import code_of, codings_of, entry_fields, text_of, texts_of, to_datetime

STATUS = {"completed": Immunisation.Status.COMPLETED, "not-done": Immunisation.Status.NOT_DONE}


@maps("Immunization")
def map_immunisation(resource, ctx):
    vaccine = text_of(resource.vaccineCode)
    if not vaccine:
        raise Unmappable(
            error("required", "An immunisation needs a vaccine (code or text).", "Immunization.vaccineCode")
        )
    system, code = code_of(resource.vaccineCode)
    return Immunisation, {
        **entry_fields(
            resource,
            ctx,
            patient=resource.patient,
            patient_expression="Immunization.patient",
            effective_at=to_datetime(resource.occurrenceDateTime),
            recorded_at=to_datetime(resource.recorded),
            entered_in_error=resource.status == "entered-in-error",
        ),
        "vaccine": vaccine,
        "code_system": system,
        "code": code,
        "codings": codings_of(resource.vaccineCode),
        "status": STATUS.get(resource.status, Immunisation.Status.COMPLETED),
        "dose": "; ".join(filter(None, (dose_of(protocol) for protocol in resource.protocolApplied or []))),
        "site": text_of(resource.site),
        "route": text_of(resource.route),
        "lot_number": resource.lotNumber or "",
        "reason_not_given": text_of(resource.statusReason),
        "notes": "\n".join(_notes(resource, ctx)),
    }


def dose_of(protocol) -> str:
    """The dose number in its series, as the source said it: "1", "2 of 3", "Booster"."""
    number = _first_set(protocol.doseNumberPositiveInt, protocol.doseNumberString)
    if number is None:
        return ""
    of = _first_set(protocol.seriesDosesPositiveInt, protocol.seriesDosesString)
    return f"{number} of {of}" if of is not None else str(number)


def _first_set(*values):
    return next((value for value in values if value not in (None, "")), None)


def _notes(resource, ctx) -> list[str]:
    notes = []
    if resource.occurrenceString:
        notes.append(f"Date given as: {resource.occurrenceString}")
    if resource.isSubpotent:
        notes.append("Subpotent dose (the source says it may not count towards the course).")
    if resource.primarySource is False:
        origin = text_of(resource.reportOrigin)
        notes.append(f"Recorded from another source{f': {origin}' if origin else ''}, not by whoever gave it.")
    diseases = [text for protocol in resource.protocolApplied or [] for text in texts_of(protocol.targetDisease)]
    if diseases:
        notes.append(f"Protects against: {', '.join(dict.fromkeys(diseases))}")
    quantity = resource.doseQuantity
    if quantity is not None and quantity.value is not None:
        unit = display_unit(quantity.unit or "", quantity.code or "", quantity.system or "")
        notes.append(f"Amount: {with_unit(f'{quantity.value.normalize():f}', unit)}")
    manufacturer = ctx.name_of(resource.manufacturer)
    if manufacturer:
        notes.append(f"Manufacturer: {manufacturer}")
    given_by = [name for name in (ctx.name_of(p.actor) for p in resource.performer or []) if name]
    if given_by:
        notes.append(f"Given by: {', '.join(given_by)}")
    reasons = texts_of(resource.reasonCode)
    if reasons:
        notes.append(f"Reason: {', '.join(reasons)}")
    notes += [note.text for note in resource.note or [] if note.text]
    return notes


# --- out: the read API ------------------------------------------------------------------------------------

# After results, before letters: the order of the record (patients.categories.Category).
reads("Immunization", Category.IMMUNISATIONS, rank=106)

_DOSE = re.compile(r"(?P<number>[1-9][0-9]*)(?: of (?P<of>[1-9][0-9]*))?")


@builds(Immunisation)
def immunisation(entry: Immunisation) -> dict:
    """Immunization requires occurrence[x]: one with no date says so in occurrenceString, never with a made-up date."""
    return {
        "resourceType": "Immunization",
        "status": entry.status,
        "statusReason": {"text": entry.reason_not_given} if entry.reason_not_given else None,
        "vaccineCode": concept(entry, entry.vaccine),
        "patient": patient_reference(entry.patient_id),
        **(
            {"occurrenceDateTime": entry.effective_at}
            if entry.effective_at
            else {"occurrenceString": "Date not recorded"}
        ),
        "recorded": entry.recorded_at,
        "lotNumber": entry.lot_number or None,
        "site": {"text": entry.site} if entry.site else None,
        "route": {"text": entry.route} if entry.route else None,
        "note": [{"text": entry.notes}] if entry.notes else None,
        "protocolApplied": [_protocol(entry.dose)] if entry.dose else None,
    }


def _protocol(dose: str) -> dict:
    match = _DOSE.fullmatch(dose)
    if match is None:
        return {"doseNumberString": dose}
    protocol = {"doseNumberPositiveInt": int(match["number"])}
    if match["of"]:
        protocol["seriesDosesPositiveInt"] = int(match["of"])
    return protocol
