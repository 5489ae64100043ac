"""ADT (admissions, transfers, discharges, person updates, merges) → a FHIR R4 transaction Bundle: the Patient (PID,
PD1: feeds.convert.patient), the visit as an Encounter (PV1, PV2), and the ward's care team as a CareTeam (the one
resource that grants access: the feed asserts the relationship, audited as the feed).

Events: A01 admit, A04 register (an attendance arriving), A05 pre-admit (planned), A02 transfer, A03 discharge,
A08 update (Patient and Encounter), A28/A31 person add/update (the Patient only), A11 cancel admit, A12 cancel
transfer, A13 cancel discharge, A40 merge. Any other event (A06, A17, A29, A45, A47, A60...) is NotAccepted.

- The Encounter's id is the visit number (PV1-19, with its assigning authority: `local_fhir_id`), else PV1-50
  (alternate visit id), else the patient's local id and the admit time (PV1-44): one visit, one Encounter, whatever
  event updates it. Class from PV1-2 (I → IMP, O → AMB, E → EMER, P → PRENC, "DAY CASE" → SS; unknown: by the
  event). Only the current location is sent (the record shows every location an Encounter lists); the earlier
  ones are in the versions fhirapi keeps (ReceivedResource), which the cancels read.
- Each version is tagged with the event and the message that made it (a digest of its text, MSH-10 shown), so a
  cancel undoes exactly its event (A12: the location before the last transfer not yet cancelled) and a message
  applied again changes nothing.
- Care teams: while an admission is in progress the ward's team (PV1-3 point of care: "T42E ward"; no ward: the
  specialty's, PV1-10) is involved; a discharge ends it (PV1-45), a transfer ends the old ward's and starts the new
  one's, a cancel admit or cancelled transfer withdraws it (entered-in-error ends it), a cancelled discharge
  reopens it. Attendances (A04) and planned admissions (A05) assert no relationship.
- A40 (MRG-1: the local id merged away): when it stands for the same record patient as the survivor (or for no
  one yet) it is re-pointed to the survivor after the import (audited `hl7.merge-applied`); when it stands for
  another record patient (another NHS number), nothing is applied: Held, and IG told (`hl7.merge-referred`).
"""

import hashlib

from django.db import transaction

from audit.names import Action
from audit.writers import audit
from fhirapi.mapping.appointments import ADMISSION_CLASSES
from fhirapi.models import ReceivedResource
from fhirapi.references import sender_system
from fhirapi.systems import ENCOUNTER_CLASS, ODS_CODE
from patients.models import Patient, SourcePatientId

from .. import segments
from ..models import feed_actor
from . import Conversion, Held, Invalid, NotAccepted
from .patient import _escape, fhir_id, is_nhs_number_identifier, local_fhir_id, local_id_of, subject_of

ENCOUNTER_EVENTS = {"A01", "A02", "A03", "A04", "A05", "A08", "A11", "A12", "A13"}
PERSON_EVENTS = {"A28", "A31"}
ACCEPTED = ENCOUNTER_EVENTS | PERSON_EVENTS | {"A40"}
EVENT_TAG = "https://carerecord.example/fhir/CodeSystem/hl7v2-event"
MESSAGE_TAG = "https://carerecord.example/fhir/CodeSystem/hl7v2-message"  # code: digest of the message, display MSH-10
PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
CLASSES = {
    "I": ("IMP", "inpatient encounter"),
    "IP": ("IMP", "inpatient encounter"),
    "INPATIENT": ("IMP", "inpatient encounter"),
    "B": ("IMP", "inpatient encounter"),  # obstetrics
    "DAY CASE": ("SS", "short stay"),
    "DAYCASE": ("SS", "short stay"),
    "O": ("AMB", "ambulatory"),
    "OP": ("AMB", "ambulatory"),
    "OUTPATIENT": ("AMB", "ambulatory"),
    "R": ("AMB", "ambulatory"),  # recurring patient
    "E": ("EMER", "emergency"),
    "ED": ("EMER", "emergency"),
    "EMERGENCY": ("EMER", "emergency"),
    "P": ("PRENC", "pre-admission"),
}
# PV1-2 unknown or absent: what the event says it is.
CLASS_BY_EVENT = {"A01": "I", "A02": "I", "A03": "I", "A04": "O", "A05": "P"}
# PV1-7 attending, PV1-17 admitting, PV1-9 consulting, PV1-8 referring doctor.
DOCTORS = [
    ("PV1.7", "ATND", "attender"),
    ("PV1.17", "ADM", "admitter"),
    ("PV1.9", "CON", "consultant"),
    ("PV1.8", "REF", "referrer"),
]


def convert(message, feed) -> Conversion:
    kind = segments.message_type(message)
    family, _, event = kind.partition("^")
    if family != "ADT" or event not in ACCEPTED:
        taken = ", ".join(sorted(ACCEPTED))
        raise NotAccepted(f"{kind or 'This message type'} is not an ADT event carerecord takes (it takes {taken}).")
    if event == "A40":
        return merge(message, feed)
    subject = subject_of(message, feed)
    entries = subject.entries()
    origins = {
        index: "PID" if entry["resource"]["resourceType"] == "Patient" else "PD1-3"
        for index, entry in enumerate(entries)
    }
    if event in ENCOUNTER_EVENTS and not (event == "A08" and not _names_a_visit(message)):
        for entry, origin in visit_entries(message, feed, event, subject):
            origins[len(entries)] = origin
            entries.append(entry)
    return Conversion(
        bundle={"resourceType": "Bundle", "type": "transaction", "entry": entries},
        origins=origins,
        local_id=subject.local_id,
        patient_id=subject.patient_id,
        learns=subject.learns,
    )


# --- the visit ----------------------------------------------------------------------------------------------------


def visit_entries(message, feed, event: str, subject) -> list[tuple[dict, str]]:
    """The Encounter (and care teams) this event leaves, from what PV1 says and the versions held before."""
    organisation = feed.organisation
    encounter_id = visit_id(message, subject)
    history = list(
        ReceivedResource.objects.filter(organisation=organisation, resource_type="Encounter", resource_id=encounter_id)
        .order_by("version")
        .values_list("json", flat=True)
    )
    latest = history[-1] if history else None
    made_by = (event, message_digest(message))
    if latest is not None and any(_made_by(version) == made_by for version in history):
        encounter = latest  # this very message was applied before: nothing to change
    else:
        built = encounter_of(message, feed, event, subject, encounter_id)
        encounter = _after_event(event, built, latest, history)
        encounter["meta"] = {"tag": _tags(event, made_by[1], segments.text(message, "MSH.10"))}
    entries = [(_put(encounter), "PV1")]
    for team in care_teams(message, feed, event, subject, encounter, latest):
        entries.append((_put(team), "PV1-3"))
    return entries


def _names_a_visit(message) -> bool:
    """An A08 may update the person alone (no PV1, or one naming no visit): then only the Patient is sent."""
    return any(segments.text(message, path) for path in ("PV1.19.1", "PV1.50.1", "PV1.44.1"))


def visit_id(message, subject) -> str:
    """The visit number (PV1-19) as a FHIR id; else the alternate visit id (PV1-50); else local id + admit time."""
    for path in ("PV1.19", "PV1.50"):
        value = segments.text(message, f"{path}.1")
        if value:
            authority = segments.text(message, f"{path}.4.1") or ("visit" if path == "PV1.19" else "altvisit")
            return local_fhir_id(authority, value)
    admitted = segments.text(message, "PV1.44.1")
    if subject.local_id and admitted:
        return fhir_id(f"{subject.local_id}.admit-{_escape(admitted, keep='')}")
    raise Invalid("No visit number (PV1-19) and no admit date/time (PV1-44): the visit cannot be told apart.", "PV1-19")


def encounter_of(message, feed, event: str, subject, encounter_id: str) -> dict:
    """The Encounter as this message's PV1/PV2 describe it (status and period as the event says)."""
    code, display = _class(message, event)
    end = _when(message, "PV1.45") or (_when(message, "EVN.6") if event == "A03" else None)
    status = {"A05": "planned", "A03": "finished"}.get(event, "in-progress")
    if event == "A08":
        status = "finished" if end else "in-progress"
    period = {"start": _start(message, event), "end": end if status == "finished" else None}
    visit = segments.text(message, "PV1.19.1")
    admission_type, service = segments.text(message, "PV1.4.1"), segments.text(message, "PV1.10.1")
    reason = segments.text(message, "PV2.3.2") or segments.text(message, "PV2.3.1")
    encounter = {
        "resourceType": "Encounter",
        "id": encounter_id,
        "identifier": [{"system": sender_system(feed.organisation.ods_code, "hl7-visit"), "value": visit}]
        if visit
        else None,
        "status": status,
        "class": {"system": ENCOUNTER_CLASS, "code": code, "display": display},
        "type": [{"text": admission_type}] if admission_type else None,
        "serviceType": {"text": service} if service else None,
        "subject": {"reference": subject.reference},
        "participant": participants(message) or None,
        "period": {key: value for key, value in period.items() if value} or None,
        "reasonCode": [{"text": reason}] if reason else None,
        "hospitalization": _hospitalization(message, status) or None,
        "location": _location(message, feed),
        "serviceProvider": {"identifier": {"system": ODS_CODE, "value": feed.organisation.ods_code}},
    }
    return {key: value for key, value in encounter.items() if value is not None}


def _class(message, event: str) -> tuple[str, str]:
    sent = segments.text(message, "PV1.2").upper()
    return CLASSES.get(sent) or CLASSES[CLASS_BY_EVENT.get(event, "I")]


def _start(message, event: str) -> str | None:
    """PV1-44 (a pre-admission: PV2-8, the expected admission, first); an admission or arrival with none: EVN-6,
    when the event occurred. Never a time made up (H-09)."""
    if event == "A05":
        return _when(message, "PV2.8") or _when(message, "PV1.44")
    return _when(message, "PV1.44") or (_when(message, "EVN.6") if event in ("A01", "A04") else None)


def _when(message, path: str) -> str | None:
    """A date/time at the precision sent (FHIR partial dates); Invalid at the field when it is no date."""
    return segments.partial_date(segments.text(message, f"{path}.1"), path.replace(".", "-"))


def participants(message) -> list[dict]:
    """The visit's doctors, each once (a repetition per identifier scheme names the same person), by display."""
    people: dict[str, dict] = {}
    for path, code, display in DOCTORS:
        for rep in segments.repetitions(message, path):
            name = doctor_name(rep)
            if not name:
                continue
            person = people.setdefault(name, {"type": [], "individual": {"display": name}})
            if not any(kind["coding"][0]["code"] == code for kind in person["type"]):
                person["type"].append({"coding": [{"system": PARTICIPATION, "code": code, "display": display}]})
    return list(people.values())


def doctor_name(rep) -> str:
    """XCN: prefix (6), given (3), middle (4), family (2), as sent."""
    parts = [segments.text(rep, "6"), segments.text(rep, "3"), segments.text(rep, "4"), segments.text(rep, "2.1")]
    return " ".join(part for part in parts if part)


def _hospitalization(message, status: str) -> dict:
    admitted = segments.text(message, "PV1.14.1")
    disposition = segments.text(message, "PV1.36.1") if status == "finished" else ""
    destination = segments.text(message, "PV1.37.1") if status == "finished" else ""
    out = {}
    if admitted:
        out["admitSource"] = {"text": admitted}
    if disposition:
        out["dischargeDisposition"] = {"text": disposition}
    if destination:
        out["destination"] = {"display": destination}
    return out


def _location(message, feed) -> list[dict] | None:
    """PV1-3 (PL): point of care (the ward), room, bed → one location, named for display; the ward kept as its
    identifier (what the care team is named for)."""
    ward, room, bed = (segments.text(message, f"PV1.3.{n}") for n in (1, 2, 3))
    if not (ward or room or bed):
        return None
    words = [ward, f"room {room}" if room else "", f"bed {bed}" if bed else ""]
    place = {"display": ", ".join(word for word in words if word)}
    if ward:
        place["identifier"] = {"system": sender_system(feed.organisation.ods_code, "hl7-ward"), "value": ward}
    return [{"location": place, "status": "active"}]


def _after_event(event: str, built: dict, latest: dict | None, history: list[dict]) -> dict:
    """What the Encounter is after this event: as built from PV1, or — for an update and the cancels — the latest
    version with only what the event changes."""
    if latest is None:
        if event == "A11":
            built["status"] = "entered-in-error"
        if event == "A13":
            built["status"] = "in-progress"
            built.get("period", {}).pop("end", None)
        return built
    if event == "A08":
        kept = {"status": latest.get("status", built["status"])}
        if built["status"] != "finished" and latest.get("period", {}).get("end"):
            kept["period"] = {**built.get("period", {}), "end": latest["period"]["end"]}
        if "hospitalization" in latest and "dischargeDisposition" in latest["hospitalization"]:
            kept["hospitalization"] = {**built.get("hospitalization", {}), **latest["hospitalization"]}
        return {**built, **kept}
    if event == "A11":
        return {**_without_meta(latest), "status": "entered-in-error"}
    if event == "A13":
        reopened = {**_without_meta(latest), "status": "in-progress"}
        period = {key: value for key, value in (latest.get("period") or {}).items() if key != "end"}
        reopened.pop("period", None)
        if period:
            reopened["period"] = period
        stay = {
            k: v
            for k, v in (latest.get("hospitalization") or {}).items()
            if k not in ("dischargeDisposition", "destination")
        }
        reopened.pop("hospitalization", None)
        if stay:
            reopened["hospitalization"] = stay
        return reopened
    if event == "A12":
        restored = {**_without_meta(latest)}
        before = location_before_transfer(history)
        if before is not None:
            restored["location"] = before
        elif built.get("location"):
            restored["location"] = built["location"]  # no transfer held: PV1-3 says where the patient is
        return restored
    return built


def location_before_transfer(history: list[dict]):
    """The location the last transfer not yet cancelled moved the patient from: transfers push, cancels pop."""
    stack, current = [], None
    for version in history:
        event, _ = _made_by(version)
        location = version.get("location")
        if event == "A12":
            if stack:
                stack.pop()
        elif event == "A02" and current is not None and location != current:
            stack.append(current)
        current = location
    return stack[-1] if stack else None


def _without_meta(resource: dict) -> dict:
    return {key: value for key, value in resource.items() if key != "meta"}


def message_digest(message) -> str:
    """Which message made a version: its text's digest (MSH-10 alone is not enough: senders reuse control ids,
    as the UCLH test messages do)."""
    return hashlib.sha256(str(message).encode()).hexdigest()[:32]


def _tags(event: str, digest: str, control_id: str) -> list[dict]:
    message = {"system": MESSAGE_TAG, "code": digest}
    if control_id:
        message["display"] = f"MSH-10 {control_id}"[:200]
    return [{"system": EVENT_TAG, "code": event}, message]


def _made_by(resource: dict) -> tuple[str, str]:
    tags = {tag.get("system"): tag.get("code", "") for tag in (resource.get("meta") or {}).get("tag", [])}
    return tags.get(EVENT_TAG, ""), tags.get(MESSAGE_TAG, "")


def _put(resource: dict) -> dict:
    return {"resource": resource, "request": {"method": "PUT", "url": f"{resource['resourceType']}/{resource['id']}"}}


# --- care teams ---------------------------------------------------------------------------------------------------


def _is_admission(encounter: dict | None) -> bool:
    return bool(encounter) and (encounter.get("class") or {}).get("code", "").upper() in ADMISSION_CLASSES


def team_name(encounter: dict | None) -> str:
    """The team an admission is under: its ward's, else its specialty's."""
    if not encounter:
        return ""
    for place in encounter.get("location") or []:
        ward = ((place.get("location") or {}).get("identifier") or {}).get("value")
        if ward:
            return f"{ward} ward"[:200]
    specialty = (encounter.get("serviceType") or {}).get("text")
    return f"{specialty} team"[:200] if specialty else ""


def team_id(encounter_id: str, name: str) -> str:
    return fhir_id(f"{encounter_id}.team-{_escape(name, keep='-')}")


def care_teams(message, feed, event: str, subject, encounter: dict, before: dict | None) -> list[dict]:
    """The CareTeams this Encounter implies: the current team's status follows the admission's; a team the
    patient left (a transfer, a cancelled transfer) ends (or is withdrawn)."""
    wanted = []
    name = team_name(encounter) if _is_admission(encounter) else ""
    status = {"in-progress": "active", "finished": "inactive", "entered-in-error": "entered-in-error"}.get(
        encounter.get("status")
    )
    moved = _when(message, "EVN.6")
    earlier = team_name(before) if _is_admission(before) else ""
    if earlier and earlier != name:
        left = "entered-in-error" if event == "A12" else "inactive"
        wanted.append((earlier, left, None, moved))
    if name and status:
        end = (encounter.get("period") or {}).get("end") if status == "inactive" else None
        start = moved if earlier and earlier != name and moved else (encounter.get("period") or {}).get("start")
        wanted.append((name, status, start, end))
    if not wanted:
        return []
    ids = {team_id(encounter["id"], team): team for team, *_ in wanted}
    held = {
        row.resource_id: row.json
        for row in ReceivedResource.objects.newest([(feed.organisation.pk, "CareTeam", key) for key in ids])
    }
    teams = []
    for team, team_status, start, end in wanted:
        key = team_id(encounter["id"], team)
        previous = held.get(key)
        period = dict((previous or {}).get("period") or {})
        if start and previous is None:  # a team's start is when it took the patient on, said once
            period["start"] = start
        if team_status == "active":
            period.pop("end", None)
        elif end:
            period["end"] = end
        resource = {
            "resourceType": "CareTeam",
            "id": key,
            "status": team_status,
            "name": team,
            "subject": {"reference": subject.reference},
            "encounter": {"reference": f"Encounter/{encounter['id']}"},
            "period": period or None,
            "managingOrganization": [{"identifier": {"system": ODS_CODE, "value": feed.organisation.ods_code}}],
        }
        teams.append({k: v for k, v in resource.items() if v is not None})
    return teams


# --- A40 merge ----------------------------------------------------------------------------------------------------


def merge(message, feed) -> Conversion:
    """The survivor's Patient applied, and each local id MRG-1 names re-pointed to the survivor after the import;
    or, across two record patients (two NHS numbers), nothing applied: Held and referred to IG."""
    merged = segments.segments(message, "MRG")
    if not merged:
        raise Invalid("An A40 needs an MRG segment naming the identifier merged away.", "MRG")
    if len(merged) > 1 or len(segments.segments(message, "PID")) > 1:
        raise NotAccepted("An A40 merging several patients at once is not taken: send one merge per message.")
    subject = subject_of(message, feed)
    prior_ids, prior_nhs = [], set()
    for rep in segments.repetitions(message, "MRG.1"):
        if is_nhs_number_identifier(rep):
            prior_nhs.add(segments.text(rep, "1").replace(" ", ""))
        else:
            prior_ids.append(local_id_of(rep))
    prior_ids = [local_id for local_id in dict.fromkeys(prior_ids) if local_id and local_id not in subject.local_ids]
    if not prior_ids:
        raise Invalid("MRG-1 names no local identifier to merge away (or only the survivor's own).", "MRG-1")
    links = SourcePatientId.objects.filter(
        organisation=feed.organisation, resource_id__in=[f"Patient/{local_id}" for local_id in prior_ids]
    ).values("resource_id", "patient_id", "patient__nhs_number")
    others = [row for row in links if row["patient_id"] != subject.patient_id]
    other_nhs = {n for n in prior_nhs if n and n != subject.nhs_number}
    if others or other_nhs:
        _refer(feed, subject, prior_ids, others, other_nhs)
    entries = subject.entries()
    return Conversion(
        bundle={"resourceType": "Bundle", "type": "transaction", "entry": entries},
        origins={index: "PID" for index in range(len(entries))},
        local_id=subject.local_id,
        patient_id=subject.patient_id,
        after=[_repoint(prior_ids, subject)],
    )


def _refer(feed, subject, prior_ids, others, other_nhs) -> None:
    """Not applied: a merge across two record patients is IG's to decide (H-06). Told now, whatever the pipeline
    does with the message (a held message's audit row stands even if nothing else of it is kept)."""
    numbers = sorted({row["patient__nhs_number"] for row in others} | other_nhs)
    reason = (
        f"merge of {', '.join(prior_ids)} into {subject.local_id or 'NHS number ' + subject.nhs_number} is across "
        f"two NHS numbers ({', '.join(numbers)} and {subject.nhs_number or 'none'}): not applied, referred to "
        "information governance"
    )
    target = others[0]["patient_id"] if others else subject.patient_id
    with transaction.atomic():
        audit(
            by=feed_actor(feed),
            action=Action.HL7_MERGE_REFERRED,
            target=Patient(pk=target) if target else feed,
            patient_id=target,
            organisation=feed.organisation.ods_code,
            merged_away=",".join(prior_ids),
            survivor=subject.local_id,
            survivor_patient=subject.patient_id or "",
            nhs_numbers=",".join(numbers),
        )
    raise Held(reason, local_id=subject.local_id, location="MRG-1")


def _repoint(prior_ids: list[str], subject):
    """After the import (the survivor now exists): each merged-away local id stands for the survivor."""

    def after(organisation, actor) -> None:
        survivor = (
            SourcePatientId.objects.filter(organisation=organisation, resource_id=f"Patient/{subject.local_id}")
            .values_list("patient_id", flat=True)
            .first()
            if subject.local_id
            else Patient.objects.filter(nhs_number=subject.nhs_number).values_list("id", flat=True).first()
        )
        if survivor is None:
            raise Held("the surviving patient of the merge is not on the record", local_id=subject.local_id)
        for local_id in prior_ids:
            key = f"Patient/{local_id}"
            before = (
                SourcePatientId.objects.filter(organisation=organisation, resource_id=key)
                .values_list("patient_id", flat=True)
                .first()
            )
            if before is not None and before != survivor:
                raise Held(f"{local_id} stands for another patient: the merge is IG's to decide", local_id=local_id)
            SourcePatientId.objects.update_or_create(
                organisation=organisation, resource_id=key, defaults={"patient_id": survivor}
            )
            audit(
                by=actor,
                action=Action.HL7_MERGE_APPLIED,
                target=Patient(pk=survivor),
                patient_id=survivor,
                organisation=organisation.ods_code,
                merged_away=local_id,
                survivor=subject.local_id,
                changed="no" if before == survivor else "yes",
            )

    return after
