"""Audited writes for objections: the public request, a professional's record of one, IG's workflow, and the
regional process text that tells patients how to object.

received → verified → upheld | rejected; upheld → withdrawn (opt back in). Upholding takes effect on the
next request (the access decision reads the state); nothing is ever deleted.

A partner system can tell IG that a patient objects (a FHIR Consent denying sharing: fhirapi.mapping.consent):
that opens a case as received, already matched to the patient, which IG verify and decide like any other. A
feed never verifies, upholds, rejects or withdraws anything (H-02: what a system sends is not the patient's
word until IG have checked it).

The public form tells nobody whether a person has objected already. Whoever fills it in, for whomever:
- the response is the same: a reference of this request's own (never an existing case's);
- the same acknowledgement is sent, before the response, to the email address typed in (when one is), made
  from what was typed in and that reference, never from a stored case (which would show the first
  requester's name or relationship to a stranger);
- the same work is done: one look for an open case, one row written (a new case, or the case's repeat
  count), one audit row, one letter, all in one transaction that is undone if the letter cannot go.

A repeat is counted on the first case only when it comes from the same person by the same contact details:
an open case matches (family name, date of birth, postcode, NHS number if both give one) and the email
address or the phone number typed in is the one the case already has. So a stranger who knows someone's name,
birth date and postcode cannot inflate that case's count or touch it at all: their request opens a case of
its own, which IG verify like any other before anything is upheld (and the form is rate limited).
"""

import hashlib
import hmac
from dataclasses import dataclass

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.template.loader import render_to_string
from django.utils import timezone

from audit.names import Action
from audit.writers import audit

from .models import IdentityCheck, Objection, RegionalProcess, new_reference

Status = Objection.Status
OPEN = (Status.RECEIVED, Status.VERIFIED, Status.UPHELD)


class InvalidTransition(ValueError):
    """The objection is not in a state where this step makes sense."""


def _require(objection, *states):
    if objection.status not in states:
        allowed = ", ".join(Status(s).label.lower() for s in states)
        raise InvalidTransition(
            f"{objection.reference} is {objection.get_status_display().lower()}; expected {allowed}."
        )


def _digits(phone: str) -> str:
    return "".join(c for c in phone or "" if c.isdigit())


def same_contact(objection, *, contact_email="", contact_phone="") -> bool:
    """The request gives the email address or the phone number the case already has."""
    email = (contact_email or "").strip().lower()
    phone = _digits(contact_phone)
    return bool(
        (email and email == objection.contact_email.strip().lower())
        or (phone and phone == _digits(objection.contact_phone))
    )


def find_repeat(*, family_name, date_of_birth, postcode, nhs_number="", contact_email="", contact_phone=""):
    """The open case this request repeats: the same person, asking from the same contact details; else None."""
    candidates = Objection.objects.filter(
        status__in=OPEN,
        date_of_birth=date_of_birth,
        postcode__iexact=postcode.replace(" ", ""),
        family_name__iexact=family_name.strip(),
    )
    if nhs_number:
        candidates = candidates.filter(nhs_number__in=[nhs_number, ""])
    return next(
        (
            case
            for case in candidates.order_by("received_at")
            if same_contact(case, contact_email=contact_email, contact_phone=contact_phone)
        ),
        None,
    )


@dataclass(frozen=True)
class Acknowledgement:
    """What the acknowledgement letter says: this request's details and reference, whatever is stored."""

    reference: str
    given_name: str
    family_name: str
    on_behalf_name: str = ""

    @property
    def requester_name(self):
        return self.on_behalf_name or f"{self.given_name} {self.family_name}"


@transaction.atomic
def submit_objection(*, by=None, **details):
    """A request from the public form. Returns the objection (an existing one for a repeat), with
    `acknowledgement`: the reference this request was given and sent (the new case's own, or a new one)."""
    details["postcode"] = details["postcode"].replace(" ", "").upper()
    repeat = find_repeat(
        family_name=details["family_name"],
        date_of_birth=details["date_of_birth"],
        postcode=details["postcode"],
        nhs_number=details.get("nhs_number", ""),
        contact_email=details.get("contact_email", ""),
        contact_phone=details.get("contact_phone", ""),
    )
    if repeat is not None:
        objection = repeat
        objection.repeat_count += 1
        objection.last_repeat_at = timezone.now()
        objection.save(update_fields=["repeat_count", "last_repeat_at"])
        # A reference of its own, as a new case would have: IG find the repeat by it in the audit trail.
        objection.acknowledgement = new_reference()
        audit(
            by=by,
            action=Action.OBJECTION_REPEATED,
            target=objection,
            patient_id=objection.patient_id,
            acknowledgement=objection.acknowledgement,
        )
    else:
        objection = Objection.objects.create(source=Objection.Source.WEB_FORM, **details)
        objection.acknowledgement = objection.reference
        audit(by=by, action=Action.OBJECTION_RECEIVED, target=objection, source="web-form")
    acknowledgement = Acknowledgement(
        reference=objection.acknowledgement,
        given_name=details["given_name"],
        family_name=details["family_name"],
        on_behalf_name=details.get("on_behalf_name", ""),
    )
    _send("received", acknowledgement, details.get("contact_email", ""))
    return objection


@transaction.atomic
def record_professional_objection(*, by, patient, reason, how_told, region):
    """A professional records that the patient objects; it enters the same IG queue, already matched."""
    objection = Objection.objects.create(
        source=Objection.Source.PROFESSIONAL,
        patient=patient,
        nhs_number=patient.nhs_number,
        given_name=patient.given_name,
        family_name=patient.family_name,
        date_of_birth=patient.date_of_birth,
        postcode=patient.postcode.replace(" ", "").upper(),
        contact_email=patient.email,
        contact_phone=patient.phone,
        region=region,
        reason=reason,
        how_told=how_told,
        recorded_by=by,
    )
    audit(by=by, action=Action.OBJECTION_RECORDED, target=objection, patient_id=patient.pk, how_told=how_told)
    return objection


# The alphabet of Objection references (optout.models.new_reference): 32 letters, so a byte picks one evenly.
REFERENCE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


def partner_reference(organisation_id: int, source_key: str) -> str:
    """The reference of the case a partner's statement opens, derived from who sent it and the statement's id
    (keyed with SECRET_KEY: as unguessable as any other reference). So the same statement re-sent finds its
    case, after IG have decided it too, and two imports of it at once cannot both open one (references are
    unique). Objection has no field for the statement it came from; this stands in for one."""
    message = f"partner-feed|{organisation_id}|{source_key}".encode()
    digest = hmac.new(settings.SECRET_KEY.encode(), message, hashlib.sha256).digest()
    return "OPT-" + "".join(REFERENCE_ALPHABET[byte % 32] for byte in digest[:8])


@transaction.atomic
def receive_partner_objection(*, by, patient, organisation, source_key, how_told="", reason="", on_behalf_name=""):
    """A partner system says the patient objects to sharing: a case in IG's queue, received and matched to the
    patient. `by` is the partner system (its token's actor), `source_key` its statement ("Consent/<id>").

    Nothing is opened when this statement opened a case before (whatever became of it), nor while the patient
    has a case open (received, verified or upheld): IG already have it in hand. Returns the new case, or None."""
    reference = partner_reference(organisation.pk, source_key)
    if Objection.objects.filter(Q(reference=reference) | Q(patient=patient, status__in=OPEN)).exists():
        return None
    try:
        with transaction.atomic():
            objection = Objection.objects.create(
                reference=reference,
                source=Objection.Source.PARTNER_FEED,
                status=Status.RECEIVED,
                patient=patient,
                nhs_number=patient.nhs_number,
                given_name=patient.given_name,
                family_name=patient.family_name,
                date_of_birth=patient.date_of_birth,
                postcode=patient.postcode.replace(" ", "").upper(),
                contact_email=patient.email,
                contact_phone=patient.phone,
                region=organisation.region,
                reason=reason,
                how_told=how_told[:200],
                on_behalf_name=on_behalf_name[:200],
            )
    except IntegrityError:
        return None  # the same statement, imported at the same moment, opened it first
    audit(
        by=by,
        action=Action.OBJECTION_RECEIVED,
        target=objection,
        patient_id=patient.pk,
        source=Objection.Source.PARTNER_FEED.value,
        organisation=organisation.ods_code,
        statement=source_key,
    )
    return objection


@transaction.atomic
def match_patient(*, by, objection, patient):
    _require(objection, Status.RECEIVED, Status.VERIFIED)
    objection.patient = patient
    objection.save(update_fields=["patient"])
    audit(by=by, action=Action.OBJECTION_MATCHED, target=objection, patient_id=patient.pk)
    return objection


@transaction.atomic
def verify(*, by, objection, identity_check, note=""):
    """IG confirmed who is asking (and how: `identity_check`, an IdentityCheck) and the matched patient. Not a
    decision: decided_by/at are left for the uphold or reject that follows."""
    _require(objection, Status.RECEIVED)
    if objection.patient_id is None:
        raise InvalidTransition(f"Match {objection.reference} to a patient before verifying it.")
    if identity_check not in IdentityCheck.values:
        raise InvalidTransition("Select how the requester's identity was checked.")
    note = note.strip()
    if identity_check == IdentityCheck.OTHER and not note:
        raise InvalidTransition("Describe how the requester's identity was checked.")
    objection.status = Status.VERIFIED
    objection.verified_by, objection.verified_at = by, timezone.now()
    objection.identity_check, objection.identity_check_note = identity_check, note[:500]
    objection.save(update_fields=["status", "verified_by", "verified_at", "identity_check", "identity_check_note"])
    audit(
        by=by,
        action=Action.OBJECTION_VERIFIED,
        target=objection,
        patient_id=objection.patient_id,
        identity_check=identity_check,
    )
    return objection


@transaction.atomic
def uphold(*, by, objection, reason=""):
    """From the next request on, no other organisation's entries are shown to anyone."""
    _require(objection, Status.VERIFIED)
    _decide(objection, by, Status.UPHELD, reason)
    audit(by=by, action=Action.OBJECTION_UPHELD, target=objection, patient_id=objection.patient_id, reason=reason)
    _notify(objection, "upheld")
    return objection


def check_reject(*, objection, reason, clinical_need=False, clinician_name=""):
    """Raises InvalidTransition unless `reject` with these values would go ahead: IG's confirmation page is shown
    only for a rejection that can be made."""
    _require(objection, Status.RECEIVED, Status.VERIFIED)
    if not reason.strip():
        raise InvalidTransition("Give the reason for rejecting the objection.")
    if clinical_need and not clinician_name.strip():
        raise InvalidTransition("A rejection for clinical need needs the name of the clinician who decided it.")


@transaction.atomic
def reject(*, by, objection, reason, clinical_need=False, clinician_name=""):
    check_reject(objection=objection, reason=reason, clinical_need=clinical_need, clinician_name=clinician_name)
    objection.clinician_name = clinician_name.strip()
    _decide(objection, by, Status.REJECTED, reason)
    audit(
        by=by,
        action=Action.OBJECTION_REJECTED,
        target=objection,
        patient_id=objection.patient_id,
        reason=reason,
        clinician=clinician_name,
    )
    _notify(objection, "rejected")
    return objection


def check_withdraw(*, objection):
    """Raises InvalidTransition unless the objection can be withdrawn (it is still open)."""
    _require(objection, Status.UPHELD, Status.RECEIVED, Status.VERIFIED)


@transaction.atomic
def withdraw(*, by, objection):
    """The patient opts back in: the shared view returns at once."""
    check_withdraw(objection=objection)
    objection.status = Status.WITHDRAWN
    objection.withdrawn_at = timezone.now()
    objection.save(update_fields=["status", "withdrawn_at"])
    audit(by=by, action=Action.OBJECTION_WITHDRAWN, target=objection, patient_id=objection.patient_id)
    _notify(objection, "withdrawn")
    return objection


@transaction.atomic
def save_regional_process(*, by, process: RegionalProcess, changed: list[str]):
    """Create or change a region's "How to opt out" text: what patients are told about objecting is IG's public
    word, so each change is audited, naming the fields that changed."""
    process.save()
    audit(
        by=by,
        action=Action.REGIONAL_PROCESS_CHANGED,
        target=process,
        region=process.region,
        fields=",".join(changed),
    )
    return process


def _decide(objection, by, status, reason):
    objection.status = status
    objection.decided_by = by
    objection.decided_at = timezone.now()
    objection.decision_reason = reason
    objection.save(update_fields=["status", "decided_by", "decided_at", "decision_reason", "clinician_name"])


def _notify(objection, event):
    """The letter to the requester about their case, at the case's contact address."""
    _send(event, objection, objection.contact_email)


def _send(event, objection, address):
    """One letter through Django's email backend (console in development). `objection` is what the letter
    names: a stored case, or an Acknowledgement of a public request."""
    if not address:
        return
    context = {
        "objection": objection,
        "service_name": settings.SERVICE_NAME,
        "response_days": settings.OPTOUT_RESPONSE_DAYS,
    }
    # Sent inside the step's transaction on purpose: if the letter cannot go, the step is not taken (IG are
    # told in admin; the public form says so), so nothing stands without the patient being told.
    send_mail(
        subject=f"{settings.SERVICE_NAME}: your objection {objection.reference}",
        message=render_to_string(f"optout/email/{event}.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        recipient_list=[address],
    )
