"""Audited writes for launch in context: a token's single use, a launch opened or refused, and IG's changes to a
launch partner.

Audit rows never hold a token or a key: a launch is named by its partner and `jti` (which the partner logs too),
a key by its SHA-256 fingerprint. Values that came from a token are written only once they are safe to store.
"""

import hashlib
from dataclasses import dataclass
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from audit.names import Action
from audit.writers import audit

from .launch import Launch, LaunchRefused, Reason
from .models import LaunchPartner, LaunchUse

# Uses of tokens long expired are forgotten as new ones come in: their exp refuses them anyway.
FORGET_AFTER = timedelta(hours=1)


@dataclass(frozen=True)
class LaunchRequest:
    """What a refusal's audit row is about when no partner is known: the request (its id joins the server logs)."""

    pk: str


def use_token(launch: Launch) -> None:
    """Spend the token: its (partner, jti) may open nothing again. LaunchRefused(REPLAYED) if it already has."""
    try:
        with transaction.atomic():
            LaunchUse.objects.create(partner=launch.partner, jti=launch.jti, expires_at=launch.expires_at)
    except IntegrityError:
        raise LaunchRefused(Reason.REPLAYED, partner=launch.partner, jti=launch.jti) from None
    LaunchUse.objects.filter(expires_at__lt=timezone.now() - FORGET_AFTER).delete()


def refused(*, by, refusal: LaunchRefused, request_id: str, subject: str = ""):
    """The AuditEvent of a refused launch: why, which partner and token when known; never the token itself."""
    partner = refusal.partner
    detail = {"reason": refusal.reason.value, "request_id": request_id}
    if refusal.claim:
        detail["claim"] = refusal.claim
    if refusal.jti:
        detail["jti"] = refusal.jti
    if refusal.issuer:
        detail["issuer"] = refusal.issuer  # the unknown or mismatched iss claimed (checked storable, 300 at most)
    if subject:
        detail["subject"] = subject  # whom the token named, when it was not the signed-in user
    if partner is not None:
        detail |= _partner_detail(partner)
    target = partner if partner is not None else LaunchRequest(request_id[:64])
    return audit(by=_actor(by), action=Action.LAUNCH_REFUSED, target=target, **detail)


def launched(*, by, launch: Launch, patient, request_id: str):
    """The AuditEvent of a launch that opened a patient's record (the record page writes its own AccessEvent)."""
    return audit(
        by=by,
        action=Action.LAUNCHED,
        target=launch.partner,
        patient_id=patient.pk,
        jti=launch.jti,
        request_id=request_id,
        **_partner_detail(launch.partner),
    )


@transaction.atomic
def save_partner(*, by, partner: LaunchPartner, changed: list[str]) -> LaunchPartner:
    """Create or change a launch partner; audited with what changed (the key by fingerprint, never its text)."""
    new = partner._state.adding
    before = None if new else LaunchPartner.objects.filter(pk=partner.pk).values_list("active", flat=True).first()
    partner.save()
    if not (changed or new):
        return partner
    if new:
        change = "created"
    elif before and not partner.active:
        change = "deactivated"
    elif before is False and partner.active:
        change = "reactivated"
    else:
        change = "changed"
    audit(
        by=by,
        action=Action.LAUNCH_PARTNER_CHANGED,
        target=partner,
        change=change,
        changed=",".join(changed),
        algorithm=partner.algorithm,
        active=partner.active,
        key_sha256=key_fingerprint(partner.public_key),
        **_partner_detail(partner),
    )
    return partner


def key_fingerprint(text: str) -> str:
    """SHA-256 of the registered key text (whitespace at the ends ignored): names a key without holding it."""
    return hashlib.sha256((text or "").strip().encode("utf-8", "replace")).hexdigest()


def _partner_detail(partner: LaunchPartner) -> dict:
    return {"partner": partner.issuer, "partner_name": partner.name, "organisation": partner.organisation.ods_code}


def _actor(user):
    return user if getattr(user, "is_authenticated", False) else None
