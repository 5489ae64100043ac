"""Procedure -> Procedure (an operation, an examination, a therapy: what was done, or planned, to the patient).

Dates (H-09): when it was done is `performedDateTime`, or a `performedPeriod`'s start; `performedString`,
`performedAge` and `performedRange` are not dates, so the entry has none ("Date not recorded") and what the source
said is kept in its notes. A Procedure has no recorded date (its recorder and asserter are people, not dates).
Codings (H-10): every coding of `code` is kept.

Status: FHIR's statuses as they are, but "on-hold" (not one of the record's) reads as in progress, said in the
notes; entered-in-error withdraws the entry. The reason a procedure was not done, and why it was done, are kept in
the notes; performers by name.
"""

from patients.categories import Category
from patients.models import Procedure

from ..context import Unmappable
from ..outcome import error
from ..registry import builds, maps, reads
from ..serialise import concept, patient_reference
from .common import code_of, codings_of, entry_fields, first, period_start, text_of, texts_of, to_datetime

STATUSES = {status.value for status in Procedure.Status}


@maps("Procedure")
def map_procedure(resource, ctx):
    name = text_of(resource.code)
    if not name:
        raise Unmappable(error("required", "A procedure needs a code or text to be shown.", "Procedure.code"))
    system, code = code_of(resource.code)
    performers = [ctx.name_of(performer.actor) for performer in resource.performer or []]
    return Procedure, {
        **entry_fields(
            resource,
            ctx,
            patient=resource.subject,
            patient_expression="Procedure.subject",
            effective_at=first(to_datetime(resource.performedDateTime), period_start(resource.performedPeriod)),
            entered_in_error=resource.status == "entered-in-error",
        ),
        "name": name,
        "code_system": system,
        "code": code,
        "codings": codings_of(resource.code),
        "status": _status(resource.status),
        "body_site": ", ".join(texts_of(resource.bodySite)),
        "outcome": text_of(resource.outcome),
        "performer": ", ".join(filter(None, performers)),
        "notes": "\n".join(_notes(resource)),
    }


def _status(status: str | None) -> str:
    if status == "on-hold":
        return Procedure.Status.IN_PROGRESS
    return status if status in STATUSES else Procedure.Status.UNKNOWN


def _notes(resource) -> list[str]:
    notes = []
    if resource.status == "on-hold":
        notes.append("On hold.")
    if when := _performed_in_words(resource):
        notes.append(f"Date given as: {when}")
    if reason := text_of(resource.statusReason):
        notes.append(f"Not done because: {reason}")
    if reasons := texts_of(resource.reasonCode):
        notes.append(f"Reason: {', '.join(reasons)}")
    if complications := texts_of(resource.complication):
        notes.append(f"Complications: {', '.join(complications)}")
    notes += [note.text for note in resource.note or [] if note.text]
    return notes


def _performed_in_words(resource) -> str:
    """performed[x] when it is not a date: a string, an age or an age range, as words."""
    if resource.performedString:
        return resource.performedString
    if resource.performedAge is not None and resource.performedAge.value is not None:
        age = resource.performedAge
        return f"at age {age.value.normalize():f} {age.unit or age.code or ''}".strip()
    performed_range = resource.performedRange
    if performed_range is not None and (performed_range.low or performed_range.high):
        ends = [
            f"{end.value.normalize():f} {end.unit or end.code or ''}".strip()
            for end in (performed_range.low, performed_range.high)
            if end is not None and end.value is not None
        ]
        return f"at age {' to '.join(ends)}" if ends else ""
    return ""


# --- out: the read API ------------------------------------------------------------------------------------

# After results, before immunisations and letters: the order of the record (patients.categories.Category).
reads("Procedure", Category.PROCEDURES, rank=103)


@builds(Procedure)
def procedure(entry: Procedure) -> dict:
    return {
        "resourceType": "Procedure",
        "status": entry.status,
        "code": concept(entry, entry.name),
        "subject": patient_reference(entry.patient_id),
        "performedDateTime": entry.effective_at,
        "bodySite": [{"text": entry.body_site}] if entry.body_site else None,
        "outcome": {"text": entry.outcome} if entry.outcome else None,
        "performer": [{"actor": {"display": entry.performer}}] if entry.performer else None,
        "note": [{"text": entry.notes}] if entry.notes else None,
    }
