"""Who an HL7 v2 message is about (H-06): the NHS number, or the sender's local identifier learned earlier, and
the date of birth must agree with the record's patient; never the name alone.

Test feeds reuse one valid NHS number (999 999 9999) for different people, and real feeds do so by mistake, so an
NHS number alone is not enough when the record already holds that patient: the date of birth must agree. A
hospital number stands for a patient once a message carrying it and an NHS number has been applied (the Patient
resource with the local id as its id: `patients.SourcePatientId` (organisation, "Patient/<local id>") is the
learned link). Anything else — no match, a conflict, a date of birth that disagrees or is missing — is held:
accepted (ACK AA) and queued for information governance with a reason they can act on, retried when a later
message teaches the link or when they retry it. Reads only: two queries a message.
"""

import datetime
from dataclasses import dataclass, field

from patients.models import Patient, SourcePatientId
from patients.nhs_numbers import format_nhs_number


class Unmatched(Exception):
    """No patient can be said for sure: the converters answer it as `feeds.convert.Held` (this module sits below
    them, so it names its own exception)."""

    def __init__(self, reason: str, *, local_id: str = "", location: str = ""):
        super().__init__(reason)
        self.reason, self.local_id, self.location = reason, local_id, location


@dataclass(frozen=True)
class Identity:
    """What a message says of whom it is about, as read from PID (feeds.convert.patient.identity_of)."""

    nhs_number: str = ""  # a valid (modulus 11) NHS number, 10 digits; "" when none
    local_ids: tuple[str, ...] = ()  # the sender's identifiers as FHIR ids ("MRENTR-40800000"), first the primary
    birth_date: datetime.date | None = None  # a full date only: a partial one cannot confirm anyone
    birth_date_sent: str = ""  # PID-7 as sent, for the reasons
    problems: tuple[str, ...] = field(default=())  # what was unusable (an NHS number failing modulus 11), for reasons

    @property
    def local_id(self) -> str:
        return self.local_ids[0] if self.local_ids else ""


@dataclass(frozen=True)
class Match:
    """The record's patient (None: new to the record, which only an NHS number can make) and its NHS number (the
    message's, or the one the learned local id stands for)."""

    patient_id: object = None
    nhs_number: str = ""
    known: bool = False  # the message's first local identifier already stood for this patient (nothing to learn)


def match(identity: Identity, organisation) -> Match:
    """Whom the message is about; raises Unmatched with the reason when that cannot be said for sure."""
    links = _links(identity, organisation)
    linked = {row["patient_id"]: row for row in links.values()}
    if len(linked) > 1:
        _hold(identity, f"{_names(links)} stand for different patients here")
    known = f"Patient/{identity.local_id}" in links
    if identity.nhs_number:
        return Match(_by_nhs_number(identity, next(iter(linked.values()), None)), identity.nhs_number, known)
    if not identity.local_ids:
        _hold(identity, "no NHS number and no local identifier (PID-3): a patient is never matched on name alone")
    if not linked:
        _hold(identity, f"{_names(links, identity.local_ids)} not known and no NHS number")
    row = next(iter(linked.values()))
    _confirm_birth_date(identity, row["patient__date_of_birth"], _names(links))
    return Match(row["patient_id"], row["patient__nhs_number"], known)


def _by_nhs_number(identity: Identity, link: dict | None):
    shown = f"NHS number {format_nhs_number(identity.nhs_number)}"
    held = Patient.objects.filter(nhs_number=identity.nhs_number).values("id", "date_of_birth").first()
    if held is None:
        if link is not None:
            _hold(
                identity,
                f"hospital number {link['resource_id'].removeprefix('Patient/')} stands for NHS number "
                f"{format_nhs_number(link['patient__nhs_number'])} here, and this message gives {shown}",
            )
        return None  # new to the record: ingest creates the patient (it needs a family name and full birth date)
    _confirm_birth_date(identity, held["date_of_birth"], shown)
    if link is not None and link["patient_id"] != held["id"]:
        _hold(
            identity,
            f"hospital number {link['resource_id'].removeprefix('Patient/')} stands for NHS number "
            f"{format_nhs_number(link['patient__nhs_number'])} here, and this message gives {shown}",
        )
    return held["id"]


def _confirm_birth_date(identity: Identity, held: datetime.date | None, shown: str) -> None:
    if held is None:
        return
    if identity.birth_date is None:
        sent = f" (PID-7 {identity.birth_date_sent!r} is not a full date)" if identity.birth_date_sent else ""
        _hold(identity, f"{shown}: no date of birth to confirm the match{sent}", "PID-7")
    if identity.birth_date != held:
        sent = identity.birth_date.isoformat()
        _hold(identity, f"{shown} is held for another date of birth (this message: {sent})", "PID-7")


def _links(identity: Identity, organisation) -> dict[str, dict]:
    keys = [f"Patient/{local_id}" for local_id in identity.local_ids]
    if not keys:
        return {}
    rows = SourcePatientId.objects.filter(organisation=organisation, resource_id__in=keys).values(
        "resource_id", "patient_id", "patient__nhs_number", "patient__date_of_birth"
    )
    return {row["resource_id"]: row for row in rows}


def _names(links: dict, local_ids=()) -> str:
    ids = [key.removeprefix("Patient/") for key in links] or list(local_ids)
    return ("hospital number " if len(ids) == 1 else "hospital numbers ") + " and ".join(sorted(ids))


def _hold(identity: Identity, reason: str, location: str = "PID-3"):
    extra = "; ".join(identity.problems)
    raise Unmatched(reason + (f" ({extra})" if extra else ""), local_id=identity.local_id, location=location)
