"""EpisodeOfCare -> CareEvent (community, CAMHS and addiction events), and the rule that picks the service.
Encounters at home or in the field, or from community, mental health and social care services, land here too
unless they are a hospital stay (the rule is in mapping/appointments.py).

An episode names a service, not a team whose members we know, so it is recorded as an event rather than
granting anyone access: only a CareTeam resource (an explicit team for the patient) starts an involvement.
"""

from patients.categories import Category
from patients.models import CareEvent

from ..registry import builds, maps, reads
from ..serialise import patient_reference
from ..systems import ENCOUNTER_CLASS
from .common import entry_fields, period_end, period_start, texts_of

CAMHS_WORDS = ("camhs", "child and adolescent mental")
ADDICTION_WORDS = ("addiction", "substance", "alcohol", "drug", "opiate", "opioid")
EPISODE_STATUS = {
    "planned": "planned",
    "waitlist": "on the waiting list",
    "active": "active",
    "onhold": "on hold",
    "finished": "finished",
    "cancelled": "cancelled",
}


def care_event_service(*texts: str) -> str:
    words = " ".join(texts).lower()
    if any(word in words for word in CAMHS_WORDS):
        return CareEvent.Service.CAMHS
    if any(word in words for word in ADDICTION_WORDS):
        return CareEvent.Service.ADDICTION
    return CareEvent.Service.COMMUNITY


@maps("EpisodeOfCare")
def map_episode_of_care(resource, ctx):
    types = texts_of(resource.type)
    title = types[0] if types else "Episode of care"
    start, end = period_start(resource.period), period_end(resource.period)
    description = [f"Episode {EPISODE_STATUS.get(resource.status, resource.status)}."]
    if start:
        description.append(f"From {start:%d %b %Y}" + (f" to {end:%d %b %Y}." if end else "."))
    return CareEvent, {
        **entry_fields(
            resource,
            ctx,
            patient=resource.patient,
            patient_expression="EpisodeOfCare.patient",
            effective_at=start,
            entered_in_error=resource.status == "entered-in-error",
        ),
        "service": care_event_service(*types),
        "title": title,
        "description": " ".join(description),
        "practitioner": ctx.name_of(resource.careManager),
    }


# --- out: the read API ------------------------------------------------------------------------------------

reads("Encounter", Category.EVENTS, rank=80)


@builds(CareEvent)
def care_event(entry: CareEvent) -> dict:
    return {
        "resourceType": "Encounter",
        "status": "finished",
        "class": {"system": ENCOUNTER_CLASS, "code": "HH", "display": "home health"},
        "serviceType": {"text": entry.get_service_display()},
        "type": [{"text": entry.title}],
        "subject": patient_reference(entry.patient_id),
        "period": {"start": entry.effective_at},
        "participant": [{"individual": {"display": entry.practitioner}}] if entry.practitioner else None,
        "reasonCode": [{"text": entry.description}] if entry.description else None,
    }
