"""MedicationStatement, MedicationRequest, MedicationDispense and MedicationAdministration -> Medication; the
drug's name and every coding (dm+d, SNOMED CT) come from the resource's own code, a contained Medication, or a
Medication the source sent before (or in the same bundle).

A dispensing or an administration is an event about a medicine (`event` dispensed / administered), never by
itself a current medicine (H-07: the summary lists current medicines from statements and prescriptions only;
the medications page lists the events with what they were and who sent them). Its status says whether it took
place: completed -> completed; anything else (in progress, on hold, cancelled, declined, not done, unknown) ->
stopped, shown as "not recorded as completed". An administration is a hospital medicine; a dispensing is one
when its category says inpatient.

Dates: a statement's `effective[x]` is when it was (or is) taken, its `dateAsserted` when that was recorded; a
request's `authoredOn` is when it was prescribed, which is both; a dispensing's `whenHandedOver` is when the
patient got it (`whenPrepared` is not: it stays in the kept resource); an administration's `effective[x]` when
it was given. None is made up when absent."""

from patients.categories import Category
from patients.models import Medication
from patients.units import display_unit, with_unit

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
EVENT_STATUS = {"completed": Medication.Status.COMPLETED}  # anything else: it is not recorded as having happened
Event = Medication.Event


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


def dosage_text(dosages) -> str:
    return "; ".join(dosage.text for dosage in dosages or [] if dosage.text)


def _fields(resource, ctx, *, effective, recorded, status, kind, dosage, ended_on, expression, event=Event.RECORDED):
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
        "dosage": dosage,
        "kind": kind,
        "event": event,
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
        dosage=dosage_text(resource.dosageInstruction),
        ended_on=to_date(period_end(validity)),
        expression="MedicationRequest",
        event=Event.PRESCRIBED,
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
        dosage=dosage_text(resource.dosage),
        ended_on=to_date(period_end(resource.effectivePeriod)),
        expression="MedicationStatement",
    )


def _event_status(resource) -> str:
    return EVENT_STATUS.get(resource.status, Medication.Status.STOPPED)


@maps("MedicationDispense")
def map_medication_dispense(resource, ctx):
    return _fields(
        resource,
        ctx,
        effective=to_datetime(resource.whenHandedOver),
        recorded=None,
        status=_event_status(resource),
        kind=medication_kind([resource.category] if resource.category else [], None),
        dosage=dosage_text(resource.dosageInstruction),
        ended_on=None,
        expression="MedicationDispense",
        event=Event.DISPENSED,
    )


def administered_dose(dosage) -> str:
    """What was given, as sent: its text, else the dose (unit as clinicians write it) and route."""
    if dosage is None:
        return ""
    if dosage.text:
        return dosage.text
    dose = dosage.dose
    amount = ""
    if dose is not None and dose.value is not None:
        amount = with_unit(f"{dose.value:f}", display_unit(dose.unit or "", dose.code or "", dose.system or ""))
    return ", ".join(filter(None, [amount, text_of(dosage.route)]))


@maps("MedicationAdministration")
def map_medication_administration(resource, ctx):
    return _fields(
        resource,
        ctx,
        effective=first(to_datetime(resource.effectiveDateTime), period_start(resource.effectivePeriod)),
        recorded=None,
        status=_event_status(resource),
        kind=Medication.Kind.HOSPITAL,
        dosage=administered_dose(resource.dosage),
        ended_on=to_date(period_end(resource.effectivePeriod)),
        expression="MedicationAdministration",
        event=Event.ADMINISTERED,
    )


# --- out: the read API ------------------------------------------------------------------------------------

reads("MedicationStatement", Category.MEDICATIONS, rank=60)


@builds(Medication)
def medication(entry: Medication) -> dict:
    """A row not received as FHIR: a dispensing or an administration as what it is (fhirapi.read gives them back
    under their own types), any other medicine as a statement."""
    if entry.event == Event.DISPENSED:
        return _dispense(entry)
    if entry.event == Event.ADMINISTERED:
        return _administration(entry)
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


def _event_status_out(entry: Medication) -> str:
    # Not completed: the row does not keep which of the other statuses the source sent.
    return "completed" if entry.status == Medication.Status.COMPLETED else "unknown"


def _dispense(entry: Medication) -> dict:
    return {
        "resourceType": "MedicationDispense",
        "status": _event_status_out(entry),
        "category": {"text": "Inpatient"} if entry.kind == Medication.Kind.HOSPITAL else None,
        "medicationCodeableConcept": concept(entry, entry.name),
        "subject": patient_reference(entry.patient_id),
        "whenHandedOver": entry.effective_at,
        "dosageInstruction": [{"text": entry.dosage}] if entry.dosage else None,
    }


# effective[x] is required: a time not recorded says so (a period that is a data-absent-reason) rather than
# being made up.
UNKNOWN_TIME = {
    "extension": [{"url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason", "valueCode": "unknown"}]
}


def _administered_when(entry: Medication) -> dict:
    if entry.effective_at is None:
        return {"effectivePeriod": UNKNOWN_TIME}
    if entry.ended_on:
        return {"effectivePeriod": {"start": entry.effective_at, "end": entry.ended_on}}
    return {"effectiveDateTime": entry.effective_at}


def _administration(entry: Medication) -> dict:
    return {
        "resourceType": "MedicationAdministration",
        "status": _event_status_out(entry),
        "medicationCodeableConcept": concept(entry, entry.name),
        "subject": patient_reference(entry.patient_id),
        **_administered_when(entry),
        "dosage": {"text": entry.dosage} if entry.dosage else None,
    }
