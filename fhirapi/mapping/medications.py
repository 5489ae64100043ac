"""MedicationStatement and MedicationRequest -> Medication; the drug's name and every coding (dm+d, SNOMED CT)
come from the resource's own code, a contained Medication, or a Medication the source sent before (or in the
same bundle).

Dates: a statement's `effective[x]` is when it was (or is) taken, its `dateAsserted` when that was recorded; a
request's `authoredOn` is when it was prescribed, which is both. Neither is made up when absent."""

from patients.categories import Category
from patients.models import Medication

from ..context import Named, Unmappable
from ..outcome import error
from ..registry import builds, maps, reads
from ..serialise import concept, patient_reference
from .common import (
    code_of,
    codes_in,
    codings_of,
    entry_fields,
    first,
    period_end,
    period_start,
    text_of,
    to_date,
    to_datetime,
)

REQUEST_STATUS = {
    "completed": Medication.Status.COMPLETED,
    "cancelled": Medication.Status.STOPPED,
    "stopped": Medication.Status.STOPPED,
}
STATEMENT_STATUS = {
    "completed": Medication.Status.COMPLETED,
    "stopped": Medication.Status.STOPPED,
    "not-taken": Medication.Status.STOPPED,
}
REPEAT_COURSES = {"continuous", "seasonal"}


def medication_named(resource, ctx, expression: str) -> Named:
    concept = resource.medicationCodeableConcept
    if concept is not None:
        return Named(text_of(concept), *code_of(concept), codings=tuple(codings_of(concept)))
    reference = resource.medicationReference
    if reference is not None and (reference.reference or "").startswith("#"):
        contained = next(
            (c for c in resource.contained or [] if f"#{c.id}" == reference.reference and c.code is not None), None
        )
        if contained is not None:
            return Named(text_of(contained.code), *code_of(contained.code), codings=tuple(codings_of(contained.code)))
    named = ctx.named(reference)
    if named and named.name:
        if not named.codings and named.code:  # sent in an earlier submission: its codings are in what it sent
            sent = ctx.received(reference) or {}
            codings = codings_of(sent.get("code")) if isinstance(sent.get("code"), dict) else []
            return Named(named.name, named.code_system, named.code, tuple(codings))
        return named
    if reference is not None and reference.display:
        return Named(reference.display)
    described = reference.reference if reference is not None else "no medication"
    raise Unmappable(
        error(
            "not-found",
            f"Medication not found: {described} is not a Medication this organisation has sent. "
            "Send it first, in the same bundle, or contained.",
            f"{expression}.medicationReference" if reference is not None else f"{expression}.medication",
        )
    )


def medication_kind(categories, course) -> str:
    if any("inpatient" in codes_in(category) for category in categories):
        return Medication.Kind.HOSPITAL
    if codes_in(course) & REPEAT_COURSES:
        return Medication.Kind.REPEAT
    return Medication.Kind.ACUTE


def _fields(resource, ctx, *, effective, recorded, status, kind, dosages, ended_on, expression):
    common = entry_fields(  # the patient first: without one, the drug does not matter
        resource,
        ctx,
        patient=resource.subject,
        patient_expression=f"{expression}.subject",
        effective_at=effective,
        recorded_at=recorded,
        entered_in_error=resource.status == "entered-in-error",
    )
    named = medication_named(resource, ctx, expression)
    return Medication, {
        **common,
        "name": named.name,
        "code_system": named.code_system,
        "code": named.code,
        "codings": list(named.codings),
        "dosage": "; ".join(dosage.text for dosage in dosages or [] if dosage.text),
        "kind": kind,
        "status": status,
        "ended_on": ended_on,
    }


@maps("MedicationRequest")
def map_medication_request(resource, ctx):
    validity = resource.dispenseRequest.validityPeriod if resource.dispenseRequest else None
    return _fields(
        resource,
        ctx,
        effective=to_datetime(resource.authoredOn),
        recorded=to_datetime(resource.authoredOn),
        status=REQUEST_STATUS.get(resource.status, Medication.Status.ACTIVE),
        kind=medication_kind(resource.category or [], resource.courseOfTherapyType),
        dosages=resource.dosageInstruction,
        ended_on=to_date(period_end(validity)),
        expression="MedicationRequest",
    )


@maps("MedicationStatement")
def map_medication_statement(resource, ctx):
    return _fields(
        resource,
        ctx,
        effective=first(to_datetime(resource.effectiveDateTime), period_start(resource.effectivePeriod)),
        recorded=to_datetime(resource.dateAsserted),
        status=STATEMENT_STATUS.get(resource.status, Medication.Status.ACTIVE),
        kind=medication_kind([resource.category] if resource.category else [], None),
        dosages=resource.dosage,
        ended_on=to_date(period_end(resource.effectivePeriod)),
        expression="MedicationStatement",
    )


# --- out: the read API ------------------------------------------------------------------------------------

reads("MedicationStatement", Category.MEDICATIONS, rank=60)


@builds(Medication)
def medication(entry: Medication) -> dict:
    return {
        "resourceType": "MedicationStatement",
        "status": entry.status,
        "category": {"text": entry.get_kind_display()},
        "medicationCodeableConcept": concept(entry, entry.name),
        "subject": patient_reference(entry.patient_id),
        "effectivePeriod": {"start": entry.effective_at, "end": entry.ended_on},
        "dateAsserted": entry.recorded_at,
        "dosage": [{"text": entry.dosage}] if entry.dosage else None,
    }
