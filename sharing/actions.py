"""Audited writes for sharing: care-team membership, involvements (which grant and revoke access), and
the access log. Views, admin, commands and tests call these rather than writing the models directly.
"""

import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone
from guardian.shortcuts import assign_perm, remove_perm
from guardian.utils import get_group_obj_perms_model

from patients.models import Patient

from .access import VIEW_PERMISSION, professional_for
from .models import (
    AccessBasis,
    AccessEvent,
    AccessOutcome,
    ApiToken,
    AuditEvent,
    BreakGlass,
    CareTeamMembership,
    Involvement,
)

PATIENT_VIEW_PERMISSION = f"patients.{VIEW_PERMISSION}"


def audit(*, by, action, target, patient_id=None, **detail):
    """Write one AuditEvent for an IG-relevant change; call inside the change's transaction."""
    return AuditEvent.objects.create(
        actor_id=by.pk if by else None,
        actor_email=by.email if by else "",
        action=action,
        target_type=type(target).__name__,
        target_id=str(target.pk),
        patient_id=patient_id,
        detail={key: str(value) for key, value in detail.items()},
    )


def record_access(*, request, patient, decision, page, patient_id=None):
    """Write one AccessEvent for a page that showed, or refused, a patient's record."""
    user = request.user if getattr(request.user, "is_authenticated", False) else None
    professional = decision.professional
    return AccessEvent.objects.create(
        user_id=user.pk if user else None,
        user_email=user.email if user else "",
        professional_name=professional.name if professional else "",
        organisation_code=professional.organisation.ods_code if professional else "",
        patient_id=patient.pk if patient else patient_id,
        patient_nhs_number=patient.nhs_number if patient else "",
        outcome=AccessOutcome.ALLOWED if decision.allowed else AccessOutcome.REFUSED,
        basis=decision.basis,
        reason="" if decision.allowed else decision.reason,
        page=page,
        path=request.get_full_path()[:500],
        request_id=getattr(request, "request_id", ""),
    )


def record_search(*, request, by, patients):
    """Searches show demographics, so they are logged too: one row per patient found (none if none)."""
    professional = professional_for(request.user)
    common = {
        "user_id": request.user.pk,
        "user_email": request.user.email,
        "professional_name": professional.name if professional else "",
        "organisation_code": professional.organisation.ods_code if professional else "",
        "outcome": AccessOutcome.ALLOWED,
        "basis": AccessBasis.NONE,
        "page": f"search:{by}",
        "path": request.path[:500],
        "request_id": getattr(request, "request_id", ""),
    }
    AccessEvent.objects.bulk_create(
        [AccessEvent(patient_id=p.pk, patient_nhs_number=p.nhs_number, **common) for p in patients]
        or [AccessEvent(reason="no-match", **common)]
    )


@transaction.atomic
def add_team_member(*, by, team, professional, role_in_team=""):
    membership, _ = CareTeamMembership.objects.get_or_create(
        team=team, professional=professional, defaults={"role_in_team": role_in_team}
    )
    professional.user.groups.add(team.group)
    audit(by=by, action="care-team.member-added", target=team, professional=professional.user.email)
    return membership


@transaction.atomic
def remove_team_member(*, by, membership):
    membership.professional.user.groups.remove(membership.team.group)
    audit(
        by=by,
        action="care-team.member-removed",
        target=membership.team,
        professional=membership.professional.user.email,
    )
    membership.delete()


@transaction.atomic
def start_involvement(*, by, patient, care_team, reason, started_at=None, source_id=""):
    """Record that a team is involved in a patient's care, and grant the team access at once."""
    involvement = Involvement.objects.create(
        patient=patient,
        care_team=care_team,
        reason=reason,
        started_at=started_at or timezone.now(),
        source_id=source_id,
    )
    sync_team_access(patient=patient, care_team=care_team)
    audit(by=by, action="involvement.started", target=involvement, patient_id=patient.pk, team=care_team.name)
    return involvement


@transaction.atomic
def end_involvement(*, by, involvement, ended_at=None):
    """End an involvement; the team loses access at once unless another current involvement remains."""
    involvement.ended_at = ended_at or timezone.now()
    involvement.save(update_fields=["ended_at"])
    sync_team_access(patient=involvement.patient, care_team=involvement.care_team)
    audit(by=by, action="involvement.ended", target=involvement, patient_id=involvement.patient_id)
    return involvement


@transaction.atomic
def break_glass(*, by, patient, reason_code, reason_text=""):
    """Start emergency access for `by` to one patient, for BREAK_GLASS_HOURS; flagged for IG review."""
    if reason_code == BreakGlass.ReasonCode.OTHER and not reason_text.strip():
        raise ValueError("A reason is required when the reason is 'Other'.")
    professional = professional_for(by)
    now = timezone.now()
    grant = BreakGlass.objects.create(
        user=by,
        patient=patient,
        professional_name=professional.name,
        organisation_code=professional.organisation.ods_code,
        reason_code=reason_code,
        reason_text=reason_text.strip(),
        started_at=now,
        expires_at=now + timedelta(hours=settings.BREAK_GLASS_HOURS),
    )
    audit(by=by, action="break-glass.started", target=grant, patient_id=patient.pk, reason=reason_code)
    return grant


@transaction.atomic
def review_break_glass(*, by, break_glass, outcome, note=""):
    """IG records the outcome of a break-glass review; the review itself is audited."""
    if outcome not in {o for o in BreakGlass.Outcome if o != BreakGlass.Outcome.PENDING}:
        raise ValueError(f"Not a review outcome: {outcome!r}")
    break_glass.review_outcome = outcome
    break_glass.review_note = note
    break_glass.reviewed_by = by
    break_glass.reviewed_at = timezone.now()
    break_glass.save(update_fields=["review_outcome", "review_note", "reviewed_by", "reviewed_at"])
    audit(
        by=by,
        action="break-glass.reviewed",
        target=break_glass,
        patient_id=break_glass.patient_id,
        outcome=outcome,
        note=note,
    )
    return break_glass


def sync_team_access(*, patient, care_team):
    """Make the team's grant on the patient match whether it has a current involvement."""
    current = Involvement.objects.current().filter(patient=patient, care_team=care_team).exists()
    if current:
        assign_perm(PATIENT_VIEW_PERMISSION, care_team.group, patient)
    else:
        remove_perm(PATIENT_VIEW_PERMISSION, care_team.group, patient)
    return current


@transaction.atomic
def sync_all_access(*, now=None):
    """Bring every care-team grant in line with the clock: revoke grants whose involvements have all
    ended, grant those whose involvement has started. Run from cron (`manage.py sync_access`).
    Returns (granted, revoked)."""
    permissions = get_group_obj_perms_model(Patient)
    current = Involvement.objects.current(now)
    stale = permissions.objects.filter(permission__codename=VIEW_PERMISSION, group__care_team__isnull=False).exclude(
        Exists(current.filter(patient=OuterRef("content_object"), care_team__group=OuterRef("group")))
    )
    revoked, _ = stale.delete()
    missing = current.exclude(
        Exists(
            permissions.objects.filter(
                permission__codename=VIEW_PERMISSION,
                content_object=OuterRef("patient"),
                group=OuterRef("care_team__group"),
            )
        )
    ).select_related("patient", "care_team__group")
    granted = 0
    for involvement in missing:
        assign_perm(PATIENT_VIEW_PERMISSION, involvement.care_team.group, involvement.patient)
        granted += 1
    return granted, revoked


@transaction.atomic
def create_api_token(*, by, name, organisation=None, user=None):
    """Create a token for an organisation (to send) or a professional (to read). Returns (token, secret):
    the secret is shown once and only its hash is kept."""
    secret = secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        name=name,
        prefix=secret[:8],
        key_hash=hashlib.sha256(secret.encode()).hexdigest(),
        organisation=organisation,
        user=user,
    )
    audit(by=by, action="api-token.created", target=token, owner=str(organisation or user))
    return token, secret


@transaction.atomic
def revoke_api_token(*, by, token):
    token.revoked_at = timezone.now()
    token.save(update_fields=["revoked_at"])
    audit(by=by, action="api-token.revoked", target=token)
    return token


def api_token_for(secret: str):
    """The active token with this secret, or None."""
    if not secret:
        return None
    digest = hashlib.sha256(secret.encode()).hexdigest()
    token = ApiToken.objects.select_related("organisation", "user").filter(key_hash=digest, revoked_at=None).first()
    if token is not None:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=timezone.now())
    return token
