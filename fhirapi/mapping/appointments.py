"""Appointment -> Appointment; Encounter -> Appointment (attended) or, for community care, CareEvent.

Encounter rule: an encounter at home or in the field (class HH, FLD), or sent by a community, mental health
or social care organisation, is a community event (CareEvent, service from its wording: CAMHS, addiction,
else community). Any other encounter (inpatient, outpatient, emergency) is shown with appointments, as
attended once it has happened: that is where clinicians look for "when was this patient last seen".

Dates: an appointment's date is its `start` (a requested period is not when it is, and `created` is when it
was booked: its recorded date); an encounter's is its period's start. None when the source gave none.
"""

from directory.models import Organisation
from patients.categories import Category
from patients.models import Appointment, CareEvent

from ..context import Unmappable
from ..outcome import error
from ..registry import builds, maps, reads
from ..serialise import patient_reference
from ..systems import NHS_NUMBER
from .common import entry_fields, first, period_start, text_of, texts_of, to_datetime
from .events import care_event_service

APPOINTMENT_STATUS = {
    "arrived": Appointment.Status.ATTENDED,
    "checked-in": Appointment.Status.ATTENDED,
    "fulfilled": Appointment.Status.ATTENDED,
    "cancelled": Appointment.Status.CANCELLED,
    "noshow": Appointment.Status.DID_NOT_ATTEND,
}
ENCOUNTER_STATUS = {
    "planned": Appointment.Status.BOOKED,
    "cancelled": Appointment.Status.CANCELLED,
}
COMMUNITY_CLASSES = {"HH", "FLD"}
COMMUNITY_ORGANISATIONS = {
    Organisation.Kind.COMMUNITY,
    Organisation.Kind.MENTAL_HEALTH,
    Organisation.Kind.SOCIAL_CARE,
}


def _is_patient(reference, ctx) -> bool:
    if reference is None:
        return False
    key = ctx.key(reference) or ""
    identifier = reference.identifier
    return (
        key.startswith("Patient/")
        or reference.type == "Patient"
        or bool(identifier and identifier.system == NHS_NUMBER)
    )


def _kind_of(reference, ctx) -> str:
    return (ctx.key(reference) or reference.type or "").split("/")[0]


@maps("Appointment")
def map_appointment(resource, ctx):
    actors = [p.actor for p in resource.participant or [] if p.actor is not None]
    patient = next((actor for actor in actors if _is_patient(actor, ctx)), None)
    if patient is None:
        raise Unmappable(error("required", "No participant is a patient.", "Appointment.participant"))
    clinicians = [ctx.name_of(a) for a in actors if _kind_of(a, ctx) in ("Practitioner", "PractitionerRole")]
    locations = [ctx.name_of(a) for a in actors if _kind_of(a, ctx) in ("Location", "HealthcareService")]
    service = first(
        *texts_of(resource.serviceType),
        *texts_of(resource.specialty),
        text_of(resource.appointmentType) or None,
        *texts_of(resource.serviceCategory),
    )
    return Appointment, {
        **entry_fields(
            resource,
            ctx,
            patient=patient,
            patient_expression="Appointment.participant.actor",
            effective_at=to_datetime(resource.start),
            recorded_at=to_datetime(resource.created),
            entered_in_error=resource.status == "entered-in-error",
        ),
        "service": service or "Appointment",
        "location": ", ".join(filter(None, locations)),
        "clinician": ", ".join(filter(None, clinicians)),
        "status": APPOINTMENT_STATUS.get(resource.status, Appointment.Status.BOOKED),
        "description": "\n\n".join(filter(None, [resource.description, resource.comment])),
    }


def is_community_encounter(resource, ctx) -> bool:
    return encounter_class(resource) in COMMUNITY_CLASSES or ctx.organisation.kind in COMMUNITY_ORGANISATIONS


def encounter_class(resource) -> str:
    return resource.class_fhir.code if resource.class_fhir is not None else ""


@maps("Encounter")
def map_encounter(resource, ctx):
    types = texts_of(resource.type)
    service_type = text_of(resource.serviceType)
    reasons = texts_of(resource.reasonCode)
    practitioners = [ctx.name_of(p.individual) for p in resource.participant or [] if p.individual is not None]
    common = entry_fields(
        resource,
        ctx,
        patient=resource.subject,
        patient_expression="Encounter.subject",
        effective_at=period_start(resource.period),
        entered_in_error=resource.status == "entered-in-error",
    )
    class_display = resource.class_fhir.display if resource.class_fhir is not None else ""
    if is_community_encounter(resource, ctx):
        return CareEvent, {
            **common,
            "service": care_event_service(*types, service_type),
            "title": first(*types, service_type or None, class_display or None) or "Contact",
            "description": "; ".join(reasons),
            "practitioner": ", ".join(filter(None, practitioners)),
        }
    locations = [ctx.name_of(loc.location) for loc in resource.location or [] if loc.location is not None]
    return Appointment, {
        **common,
        "service": first(service_type or None, *types, class_display or None) or "Encounter",
        "location": ", ".join(filter(None, locations)),
        "clinician": ", ".join(filter(None, practitioners)),
        "status": ENCOUNTER_STATUS.get(resource.status, Appointment.Status.ATTENDED),
        "description": "; ".join(reasons),
    }


# --- out: the read API ------------------------------------------------------------------------------------

APPOINTMENT_STATUS = {"booked": "booked", "attended": "fulfilled", "cancelled": "cancelled", "noshow": "noshow"}

reads("Appointment", Category.APPOINTMENTS, rank=70)


@builds(Appointment)
def appointment(entry: Appointment) -> dict:
    participants = [{"actor": patient_reference(entry.patient_id), "status": "accepted"}]
    if entry.clinician:
        participants.append({"actor": {"display": entry.clinician}, "status": "accepted"})
    if entry.location:
        participants.append({"actor": {"display": entry.location}, "status": "accepted"})
    return {
        "resourceType": "Appointment",
        "status": "entered-in-error" if entry.entered_in_error else APPOINTMENT_STATUS[entry.status],
        "serviceType": [{"text": entry.service}],
        "start": entry.effective_at,
        "description": entry.description or None,
        "participant": participants,
    }
