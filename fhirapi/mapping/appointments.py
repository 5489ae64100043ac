"""Appointment -> Appointment; Encounter -> an attendance or admission (Appointment) or, for community care, a
CareEvent; ServiceRequest -> a referral (Appointment). The appointments category is where a clinician looks for
when the patient was last seen, is expected, is now, or was sent.

Encounter rule: an admission (class IMP, ACUTE, NONAC, SS: a stay in a hospital bed, whoever runs the hospital)
is an Appointment of kind admission. Any other encounter at home or in the field (class HH, FLD), or sent by a
community, mental health or social care organisation, is a community event (CareEvent, service from its
wording: CAMHS, addiction, else community). Any other encounter (outpatient, emergency, virtual, pre-admission)
is an attendance. An encounter's status says where it stands: planned -> booked; arrived, triaged, in-progress
and on leave -> in progress (an admission in progress, not yet ended, is "currently in hospital" on the banner:
sharing.record.current_admissions); finished -> attended; cancelled -> cancelled; anything else (unknown) ->
attended, as before. Its class code is kept (`encounter_class`) and its period's end (`ends_at`: None while
open).

ServiceRequest rule: a referral or request for a service. active, on hold or unknown -> requested (on hold
says so), completed -> completed, revoked -> cancelled. A draft is not yet a request: not imported (a warning
says so; send it when it is active). A request *not* to do something (doNotPerform, a modifier element) would
read as its opposite among referrals: refused (`not-supported`, H-10).

Dates: an appointment's date is its `start` (a requested period is not when it is, and `created` is when it
was booked: its recorded date); an encounter's is its period's start (and `ends_at` its end); a referral's is
when it should happen (`occurrence[x]`), and `authoredOn`, when it was requested, is its recorded date. None
when the source gave none: a referral with no occurrence is "Date not recorded", recorded on its authoredOn.
"""

from directory.models import Organisation
from patients.categories import Category
from patients.models import Appointment, CareEvent

from ..context import Unmappable
from ..outcome import error, warning
from ..registry import builds, maps, reads
from ..serialise import patient_reference
from ..systems import ENCOUNTER_CLASS, NHS_NUMBER
from .common import entry_fields, first, period_end, period_start, text_of, texts_of, to_datetime
from .events import care_event_service

Kind = Appointment.Kind
Status = Appointment.Status

APPOINTMENT_STATUS = {
    "arrived": Status.ATTENDED,
    "checked-in": Status.ATTENDED,
    "fulfilled": Status.ATTENDED,
    "cancelled": Status.CANCELLED,
    "noshow": Status.DID_NOT_ATTEND,
}
ENCOUNTER_STATUS = {
    "planned": Status.BOOKED,
    "arrived": Status.IN_PROGRESS,
    "triaged": Status.IN_PROGRESS,
    "in-progress": Status.IN_PROGRESS,
    "onleave": Status.IN_PROGRESS,  # on leave from the ward: still admitted
    "finished": Status.ATTENDED,
    "cancelled": Status.CANCELLED,
}
REFERRAL_STATUS = {
    "active": Status.REQUESTED,
    "on-hold": Status.REQUESTED,
    "unknown": Status.REQUESTED,
    "completed": Status.COMPLETED,
    "revoked": Status.CANCELLED,
    "entered-in-error": Status.CANCELLED,
}
# v3-ActCode: inpatient encounter, its acute and non-acute kinds, and a short stay (a day case): a hospital bed.
# PRENC (pre-admission) is a visit before an admission, not one: an attendance.
ADMISSION_CLASSES = {"IMP", "ACUTE", "NONAC", "SS"}
COMMUNITY_CLASSES = {"HH", "FLD"}
# Said outright (the upsert compares every column: a database default is not a value to compare).
NOT_AN_ENCOUNTER = {"encounter_class": "", "ends_at": None}
COMMUNITY_ORGANISATIONS = {
    Organisation.Kind.COMMUNITY,
    Organisation.Kind.MENTAL_HEALTH,
    Organisation.Kind.SOCIAL_CARE,
}


def _is_patient(reference, ctx) -> bool:
    if reference is None:
        return False
    identifier = reference.identifier
    return ctx.kind_of(reference) == "Patient" or bool(identifier and identifier.system == NHS_NUMBER)


def _kind_of(reference, ctx) -> str:
    """Whatever way the reference points (id, fullUrl, conditional search, contained resource: Context.kind_of)."""
    return ctx.kind_of(reference)


def _names(references, ctx) -> str:
    return ", ".join(filter(None, (ctx.name_of(reference) for reference in references if reference is not None)))


@maps("Appointment")
def map_appointment(resource, ctx):
    actors = [p.actor for p in resource.participant or [] if p.actor is not None]
    patient = next((actor for actor in actors if _is_patient(actor, ctx)), None)
    if patient is None:
        raise Unmappable(error("required", "No participant is a patient.", "Appointment.participant"))
    clinicians = [a for a in actors if _kind_of(a, ctx) in ("Practitioner", "PractitionerRole")]
    locations = [a for a in actors if _kind_of(a, ctx) in ("Location", "HealthcareService")]
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
        "kind": Kind.APPOINTMENT,
        **NOT_AN_ENCOUNTER,
        "service": service or "Appointment",
        "location": _names(locations, ctx),
        "clinician": _names(clinicians, ctx),
        "status": APPOINTMENT_STATUS.get(resource.status, Status.BOOKED),
        "description": "\n\n".join(filter(None, [resource.description, resource.comment])),
    }


def encounter_class(resource) -> str:
    return (resource.class_fhir.code or "") if resource.class_fhir is not None else ""


def encounter_kind(resource) -> str:
    """Admission or attendance, from the encounter's class (its code, else words such as "inpatient")."""
    code = encounter_class(resource).upper()
    words = (resource.class_fhir.display or "").lower() if resource.class_fhir is not None else ""
    if code in ADMISSION_CLASSES or (code not in COMMUNITY_CLASSES and "inpatient" in words):
        return Kind.ADMISSION
    return Kind.ATTENDANCE


def is_community_encounter(resource, ctx) -> bool:
    if encounter_kind(resource) == Kind.ADMISSION:
        return False  # a hospital stay, in a community or mental health hospital too: the banner must know
    return encounter_class(resource).upper() in COMMUNITY_CLASSES or ctx.organisation.kind in COMMUNITY_ORGANISATIONS


@maps("Encounter")
def map_encounter(resource, ctx):
    types = texts_of(resource.type)
    service_type = text_of(resource.serviceType)
    reasons = texts_of(resource.reasonCode)
    practitioners = [p.individual for p in resource.participant or []]
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
            "practitioner": _names(practitioners, ctx),
        }
    kind = encounter_kind(resource)
    return Appointment, {
        **common,
        "kind": kind,
        "encounter_class": encounter_class(resource),
        "ends_at": period_end(resource.period),
        "service": first(service_type or None, *types, class_display or None) or Kind(kind).label,
        "location": _names((location.location for location in resource.location or []), ctx),
        "clinician": _names(practitioners, ctx),
        "status": ENCOUNTER_STATUS.get(resource.status, Status.ATTENDED),
        "description": "; ".join(reasons),
    }


def _occurrence(resource):
    """When the requested service should happen: occurrence[x] (a timing's first event), else None."""
    timing = resource.occurrenceTiming
    events = (timing.event or []) if timing is not None else []
    return first(
        to_datetime(resource.occurrenceDateTime),
        period_start(resource.occurrencePeriod),
        to_datetime(events[0]) if events else None,
    )


@maps("ServiceRequest")
def map_service_request(resource, ctx):
    if resource.doNotPerform:
        raise Unmappable(
            error(
                "not-supported",
                "A request not to perform a service would read as a referral for it: not imported.",
                "ServiceRequest.doNotPerform",
            )
        )
    if resource.status == "draft":
        raise Unmappable(
            warning(
                "not-supported",
                "A draft ServiceRequest is not yet a referral: not imported. Send it again when it is active.",
                "ServiceRequest.status",
            )
        )
    common = entry_fields(
        resource,
        ctx,
        patient=resource.subject,
        patient_expression="ServiceRequest.subject",
        effective_at=_occurrence(resource),
        recorded_at=to_datetime(resource.authoredOn),
        entered_in_error=resource.status == "entered-in-error",
    )
    reasons = [
        *texts_of(resource.reasonCode),
        *(reference.display for reference in resource.reasonReference or [] if reference.display),
    ]
    notes = [note.text for note in resource.note or [] if note.text]
    held = ["On hold."] if resource.status == "on-hold" else []
    return Appointment, {
        **common,
        "kind": Kind.REFERRAL,
        **NOT_AN_ENCOUNTER,
        "service": first(text_of(resource.code) or None, *texts_of(resource.category)) or "Referral",
        "location": ", ".join(
            filter(
                None,
                [
                    _names(resource.performer or [], ctx),
                    _names(resource.locationReference or [], ctx),
                    *texts_of(resource.locationCode),
                ],
            )
        ),
        "clinician": ctx.name_of(resource.requester),
        "status": REFERRAL_STATUS.get(resource.status, Status.REQUESTED),
        "description": "\n\n".join(filter(None, ["; ".join(reasons), *notes, *held])),
    }


# --- out: the read API ------------------------------------------------------------------------------------

# What a row not received as FHIR is given back as (fhirapi.read.BUILT_AS_OTHER picks the rows by kind).
APPOINTMENT_STATUS_OUT = {
    Status.BOOKED: "booked",
    Status.ATTENDED: "fulfilled",
    Status.CANCELLED: "cancelled",
    Status.DID_NOT_ATTEND: "noshow",
    Status.IN_PROGRESS: "arrived",
    Status.REQUESTED: "proposed",
    Status.COMPLETED: "fulfilled",
}
ENCOUNTER_STATUS_OUT = {
    Status.BOOKED: "planned",
    Status.ATTENDED: "finished",
    Status.COMPLETED: "finished",
    Status.IN_PROGRESS: "in-progress",
    Status.CANCELLED: "cancelled",
    Status.DID_NOT_ATTEND: "cancelled",
    Status.REQUESTED: "planned",
}
REFERRAL_STATUS_OUT = {Status.REQUESTED: "active", Status.COMPLETED: "completed", Status.CANCELLED: "revoked"}
DEFAULT_CLASS = {Kind.ADMISSION: ("IMP", "inpatient encounter"), Kind.ATTENDANCE: ("AMB", "ambulatory")}

reads("Appointment", Category.APPOINTMENTS, rank=70)


@builds(Appointment)
def appointment(entry: Appointment) -> dict:
    if entry.kind in (Kind.ATTENDANCE, Kind.ADMISSION):
        return _encounter(entry)
    if entry.kind == Kind.REFERRAL:
        return _service_request(entry)
    participants = [{"actor": patient_reference(entry.patient_id), "status": "accepted"}]
    if entry.clinician:
        participants.append({"actor": {"display": entry.clinician}, "status": "accepted"})
    if entry.location:
        participants.append({"actor": {"display": entry.location}, "status": "accepted"})
    return {
        "resourceType": "Appointment",
        "status": "entered-in-error" if entry.entered_in_error else APPOINTMENT_STATUS_OUT.get(entry.status, "booked"),
        "serviceType": [{"text": entry.service}],
        "start": entry.effective_at,
        "end": entry.ends_at if entry.effective_at else None,  # app-3: an end only with a start
        "created": entry.recorded_at,
        "description": entry.description or None,
        "participant": participants,
    }


def _encounter(entry: Appointment) -> dict:
    code, display = DEFAULT_CLASS[entry.kind]
    if entry.encounter_class and entry.encounter_class != code:
        display = None
    return {
        "resourceType": "Encounter",
        "status": ENCOUNTER_STATUS_OUT.get(entry.status, "unknown"),
        "class": {"system": ENCOUNTER_CLASS, "code": entry.encounter_class or code, "display": display},
        "serviceType": {"text": entry.service},
        "subject": patient_reference(entry.patient_id),
        "period": {"start": entry.effective_at, "end": entry.ends_at},
        "participant": [{"individual": {"display": entry.clinician}}] if entry.clinician else None,
        "location": [{"location": {"display": entry.location}}] if entry.location else None,
        "reasonCode": [{"text": entry.description}] if entry.description else None,
    }


def _service_request(entry: Appointment) -> dict:
    return {
        "resourceType": "ServiceRequest",
        "status": REFERRAL_STATUS_OUT.get(entry.status, "unknown"),
        "intent": "order",
        "code": {"text": entry.service},
        "subject": patient_reference(entry.patient_id),
        "occurrenceDateTime": entry.effective_at,
        "authoredOn": entry.recorded_at,
        "requester": {"display": entry.clinician} if entry.clinician else None,
        "performer": [{"display": entry.location}] if entry.location else None,
        "note": [{"text": entry.description}] if entry.description else None,
    }
