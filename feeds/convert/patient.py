"""PID and PD1 → whom a message is about (`subject_of`): the FHIR reference its other resources use, and the UK Core
Patient resource(s) to send with them, always carrying an NHS number (fhirapi matches and creates patients on it
alone): the message's, or the one its learned local id stands for.

- The NHS number: a PID-3 repetition whose assigning authority (CX-4) is NHS or whose identifier type (CX-5) is NH
  (UCLH send `^^^NHS^HN`); else PID-2 or PID-19, as older feeds put it. Only a valid one (modulus 11) is used: an
  invalid one is said in a Held reason, never sent on.
- The sender's local identifiers (every other PID-3 repetition, a hospital number above all): each is made a FHIR id
  `<assigning authority>-<value>` (`local_fhir_id`), the first is the Patient's id, so that the record's
  `patients.SourcePatientId` (organisation, "Patient/<id>") is the learned link from hospital number to patient;
  each is also kept as an identifier. A message with an NHS number sends one Patient per local id, so every one of
  them is learned; a message with only a hospital number, once matched, sends the Patient with the NHS number the
  link stands for (its demographics update this sender's copy, as any Patient it sent would), and refers to
  "Patient/<id>", which ingest resolves through the link.
- Matching (feeds.matching): NHS number or learned local id, with the date of birth agreeing; else Held.
- Demographics are only built here: fhirapi applies them by its one rule (each source's copy, the precedence).
"""

import hashlib
import re
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError

from fhirapi.references import sender_system
from fhirapi.systems import CONFIDENTIALITY, NHS_NUMBER, ODS_CODE
from patients.nhs_numbers import normalise, validate_nhs_number

from .. import segments
from ..matching import Identity, Unmatched, match
from . import Held, Invalid

UK_CORE_PATIENT = "https://fhir.hl7.org.uk/StructureDefinition/UKCore-Patient"
MAX_ID = 64
_ID_SAFE = re.compile(r"[A-Za-z0-9]")
_GP_PRACTICE = re.compile(r"[A-Z][0-9]{5}\Z")  # England's and Wales' GP practice ODS codes (F83006, W97001)
SEX = {"M": "male", "F": "female", "O": "other", "U": "unknown", "A": "other", "N": "unknown"}
# XAD-7 address type → FHIR Address.use (home where the type says a residence; others are not the home address)
ADDRESS_USE = {"H": "home", "L": "home", "P": "home", "": "home", "C": "temp", "B": "work", "O": "work", "BA": "old"}
# XPN-7 name type: legal and display (Epic's D) names are the one to use; others (maiden, alias...) are kept as such
NAME_USE = {"L": "official", "D": "usual", "": "official", "M": "maiden", "A": "nickname", "N": "nickname"}


@dataclass
class Subject:
    """Whom a message is about. `reference`: what the message's other resources point at ("Patient/<local id>",
    or the conditional reference by NHS number when the sender gave no local id); `resources`: what to send first
    (a Patient per local id, or one by NHS number, and the registered GP practice's Organization); `patient_id`:
    the record's patient when matched (None for a patient new to the record); `nhs_number` the NHS number sent."""

    reference: str
    local_id: str = ""
    patient_id: object = None
    nhs_number: str = ""
    resources: list[dict] = field(default_factory=list)
    local_ids: tuple[str, ...] = ()
    learns: bool = False  # applied, this message links a local identifier not linked before

    @property
    def resource(self) -> dict | None:
        return next((r for r in self.resources if r["resourceType"] == "Patient"), None)

    def entries(self) -> list[dict]:
        """The transaction Bundle entries for the resources (an update of this sender's copy: PUT)."""
        out = []
        for resource in self.resources:
            if resource.get("id"):
                url = f"{resource['resourceType']}/{resource['id']}"
            else:
                url = f"Patient?identifier={NHS_NUMBER}|{self.nhs_number}"
            out.append({"resource": resource, "request": {"method": "PUT", "url": url}})
        return out


def subject_of(message, feed) -> Subject:
    """Whom the message is about, matched (feeds.matching); raises Held when it cannot be (ACK AA, queued) and
    Invalid when PID cannot be read or a new patient lacks what the record needs to create one."""
    pid = segments.segment(message, "PID")
    if pid is None:
        raise Invalid("The message has no PID segment: it must say whom it is about.", "PID")
    identity = identity_of(message)
    try:
        found = match(identity, feed.organisation)
    except Unmatched as unmatched:
        raise Held(unmatched.reason, local_id=unmatched.local_id, location=unmatched.location) from unmatched
    if found.patient_id is None:
        _check_creatable(message)
    patient = patient_resource(message, identity, found.nhs_number, feed.organisation)
    resources = [dict(patient, id=local_id) for local_id in identity.local_ids] or [patient]
    practice = practice_resource(message)
    if practice:
        resources.insert(0, practice)
    reference = f"Patient/{identity.local_id}" if identity.local_id else _by_nhs_number(found.nhs_number)
    return Subject(
        reference=reference,
        local_id=identity.local_id,
        patient_id=found.patient_id,
        nhs_number=found.nhs_number,
        resources=resources,
        local_ids=identity.local_ids,
        learns=bool(identity.local_id) and not found.known,
    )


def _by_nhs_number(nhs_number: str) -> str:
    return f"Patient?identifier={NHS_NUMBER}|{nhs_number}"


# --- identity -----------------------------------------------------------------------------------------------------


def identity_of(message) -> Identity:
    """The NHS number, local ids and date of birth PID gives (nothing looked up)."""
    nhs_numbers, problems, local_ids = [], [], []
    for index, rep in enumerate(segments.repetitions(message, "PID.3"), start=1):
        value = segments.text(rep, "1")
        if not value:
            continue
        if is_nhs_number_identifier(rep):
            _nhs(value, f"PID-3[{index}]", nhs_numbers, problems)
        else:
            local_id = local_fhir_id(_authority(rep), value)
            if local_id not in local_ids:
                local_ids.append(local_id)
    if not nhs_numbers:  # older feeds: PID-2 (external id), PID-19 (once the SSN, the NHS number in UK feeds)
        external = segments.text(message, "PID.2.1")
        authority = segments.text(message, "PID.2.4.1").upper()
        for value in (external if authority in ("", "NHS") else "", _pid19(message)):
            digits = normalise(value)
            if len(digits) == 10 and digits.isdigit() and _valid(digits):
                nhs_numbers.append(digits)
                break
    distinct = list(dict.fromkeys(nhs_numbers))
    if len(distinct) > 1:
        raise Held(
            "two NHS numbers in one message (" + ", ".join(distinct) + ")",
            local_id=local_ids[0] if local_ids else "",
            location="PID-3",
        )
    sent = segments.text(message, "PID.7.1")
    return Identity(
        nhs_number=distinct[0] if distinct else "",
        local_ids=tuple(local_ids),
        birth_date=segments.date(sent[:8], "PID-7") if sent else None,
        birth_date_sent=sent,
        problems=tuple(problems),
    )


def _pid19(message) -> str:
    return segments.text(message, "PID.19.1")


def is_nhs_number_identifier(rep) -> bool:
    """A PID-3 repetition that says it is an NHS number: assigning authority NHS, or identifier type NH (NHS
    interface specifications) without another authority."""
    authority = segments.text(rep, "4.1").upper()
    kind = segments.text(rep, "5").upper()
    return authority == "NHS" or (kind == "NH" and not authority)


def _nhs(value: str, where: str, found: list, problems: list) -> None:
    digits = normalise(value)
    if _valid(digits):
        found.append(digits)
    else:
        problems.append(f"the NHS number in {where}, {value!r}, is not a valid NHS number (modulus 11)")


def _valid(digits: str) -> bool:
    try:
        validate_nhs_number(digits)
    except ValidationError:
        return False
    return True


def _authority(rep) -> str:
    """CX-4 (the assigning authority's namespace), else CX-5 (the identifier type), else "PID3"."""
    return segments.text(rep, "4.1") or segments.text(rep, "4.2") or segments.text(rep, "5") or "PID3"


def local_fhir_id(authority: str, value: str) -> str:
    """`<authority>-<value>` as a FHIR id (A-Za-z0-9-., at most 64): any other character (and "." itself, and "-"
    within the authority) written `.XX` in hex, so that two different identifiers never become one id (H-06);
    a longer one is shortened with a digest of the whole."""
    return fhir_id(_escape(authority, keep="") + "-" + _escape(value, keep="-"))


def fhir_id(made: str) -> str:
    """At most 64 characters: a longer one shortened, with a digest of the whole so that it stays its own."""
    if len(made) <= MAX_ID:
        return made
    return made[: MAX_ID - 17] + "-" + hashlib.sha256(made.encode()).hexdigest()[:16]


def _escape(text: str, *, keep: str) -> str:
    return "".join(
        c if _ID_SAFE.match(c) or c in keep else "".join(f".{b:02X}" for b in c.encode()) for c in text.strip()
    )


def local_id_of(where, path: str = "") -> str:
    """A local identifier elsewhere (MRG-1 of a merge; `where` a repetition and no path) as the same FHIR id, or ""
    when absent."""
    prefix = f"{path}." if path else ""
    value = segments.text(where, f"{prefix}1")
    if not value:
        return ""
    authority = segments.text(where, f"{prefix}4.1") or segments.text(where, f"{prefix}5") or "PID3"
    return local_fhir_id(authority, value)


# --- the Patient resource -------------------------------------------------------------------------------------------


def _check_creatable(message) -> None:
    """A patient new to the record needs a family name and a full date of birth (fhirapi's rule): said here with
    the HL7 field, so the AE names PID-5 or PID-7 rather than a FHIR element."""
    if not segments.text(message, "PID.5.1"):
        raise Invalid("A patient new to the shared record needs a family name (PID-5).", "PID-5")
    if segments.date(segments.text(message, "PID.7.1")[:8], "PID-7") is None:
        raise Invalid("A patient new to the shared record needs a full date of birth (PID-7).", "PID-7")


def patient_resource(message, identity: Identity, nhs_number: str, organisation) -> dict:
    """The UK Core Patient PID and PD1 give (without an id: one per local id is made from it), with the NHS
    number the message gave or its local id stands for."""
    identifiers = [{"system": NHS_NUMBER, "value": nhs_number}]
    for rep in segments.repetitions(message, "PID.3"):
        value = segments.text(rep, "1")
        if value and not is_nhs_number_identifier(rep):
            system = sender_system(organisation.ods_code, f"hl7-{_escape(_authority(rep), keep='-')}")
            identifiers.append({"system": system, "value": value})
    resource = {
        "resourceType": "Patient",
        "meta": {"profile": [UK_CORE_PATIENT]},
        "identifier": identifiers,
        "name": names(message),
        "gender": SEX.get(segments.text(message, "PID.8").upper()),
        "birthDate": segments.partial_date(segments.text(message, "PID.7.1")[:8], "PID-7"),
        "address": addresses(message),
        "telecom": telecoms(message),
        "generalPractitioner": practice_reference(message),
    }
    resource.update(death(message))
    protection = segments.text(message, "PD1.12").upper()
    if protection in ("Y", "N"):  # PD1-12 protection indicator: Y restricts (the S-flag), N lifts this source's
        code = "R" if protection == "Y" else "N"
        resource["meta"]["security"] = [{"system": CONFIDENTIALITY, "code": code}]
    return {key: value for key, value in resource.items() if value not in (None, [], "")}


def names(message) -> list[dict]:
    out = []
    for rep in segments.repetitions(message, "PID.5"):
        family, given = segments.text(rep, "1.1") or segments.text(rep, "1"), segments.text(rep, "2")
        if not (family or given):
            continue
        name = {"use": NAME_USE.get(segments.text(rep, "7").upper(), "official"), "family": family or None}
        name["given"] = [part for part in (given, segments.text(rep, "3")) if part] or None
        name["prefix"] = [segments.text(rep, "5")] if segments.text(rep, "5") else None
        name["suffix"] = [segments.text(rep, "4")] if segments.text(rep, "4") else None
        out.append({key: value for key, value in name.items() if value})
    return out


def addresses(message) -> list[dict]:
    out = []
    for rep in segments.repetitions(message, "PID.11"):
        street = segments.text(rep, "1.1") or segments.text(rep, "1")
        lines = [line for line in (street, segments.text(rep, "2")) if line]
        city, district, postcode = segments.text(rep, "3"), segments.text(rep, "4"), segments.text(rep, "5")
        if not (lines or city or postcode):
            continue  # a country alone (Epic's "^^^^^ENGLAND^L") is no address
        kind = segments.text(rep, "7").upper()
        address = {
            "use": ADDRESS_USE.get(kind),
            "type": "postal" if kind == "M" else None,
            "line": lines or None,
            "city": city or None,
            "district": district or None,
            "postalCode": postcode or None,
            "country": segments.text(rep, "6") or None,
        }
        out.append({key: value for key, value in address.items() if value})
    return out


def telecoms(message) -> list[dict]:
    out = []
    for path, use in (("PID.13", "home"), ("PID.14", "work")):
        for rep in segments.repetitions(message, path):
            code, equipment = segments.text(rep, "2").upper(), segments.text(rep, "3").upper()
            email = segments.text(rep, "4")
            if code == "NET" or equipment in ("INTERNET", "X.400"):
                if email or "@" in segments.text(rep, "1"):
                    out.append({"system": "email", "value": email or segments.text(rep, "1")})
                continue
            number = segments.text(rep, "1") or segments.text(rep, "12")
            number = number or " ".join(p for p in (segments.text(rep, "6"), segments.text(rep, "7")) if p)
            if number:
                out.append({"system": "phone", "value": number, "use": "mobile" if equipment == "CP" else use})
    return out


def _practice(message) -> tuple[str, str]:
    """PD1-3 (XON): the registered GP practice's ODS code (XON-3 up to 2.4, XON-10 from 2.5) and name."""
    code = (segments.text(message, "PD1.3.10") or segments.text(message, "PD1.3.3")).upper()
    return (code, segments.text(message, "PD1.3.1")) if _GP_PRACTICE.match(code) else ("", "")


def practice_reference(message) -> list[dict] | None:
    code, name = _practice(message)
    if not code:
        return None
    reference = {"type": "Organization", "identifier": {"system": ODS_CODE, "value": code}}
    return [dict(reference, display=name) if name else reference]


def practice_resource(message) -> dict | None:
    """An Organization for the practice, so that one not yet in the directory is added (as fhirapi adds any
    Organization sent) and the patient's registered GP is set."""
    code, name = _practice(message)
    if not code:
        return None
    identifier = [{"system": ODS_CODE, "value": code}]
    resource = {"resourceType": "Organization", "id": f"ods-{code}", "identifier": identifier}
    return dict(resource, name=name) if name else resource


def death(message) -> dict:
    """PID-29 (date/time of death) and PID-30 (death indicator) → deceased[x] (H-15): a date (at the precision
    sent) when given, else `deceasedBoolean` from the indicator; nothing when neither is sent. A date of death with
    the indicator N contradicts itself: refused (AE) rather than guessed either way."""
    sent, indicator = segments.text(message, "PID.29.1"), segments.text(message, "PID.30").upper()
    when = segments.partial_date(sent, "PID-29") if sent else None
    if when and indicator == "N":
        raise Invalid("PID-30 says the patient has not died but PID-29 gives a date of death.", "PID-30")
    if when:
        return {"deceasedDateTime": when}
    if indicator in ("Y", "N"):
        return {"deceasedBoolean": indicator == "Y"}
    return {}
