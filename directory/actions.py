"""Audited writes for the directory: provisioning and changing professionals, organisations, care-team
membership (which is access: a team's members are its Django group's users) and API tokens. Admin, feeds,
commands and tests call these rather than saving the models themselves.
"""

import hashlib
import secrets

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from audit.names import Action
from audit.writers import audit

from .models import ApiToken, CareTeamMembership, Professional


@transaction.atomic
def provision_professional(*, by, email, first_name, last_name, organisation, role, **profile):
    """Create a sign-in account (no usable password until they set one) with its professional profile."""
    user = get_user_model().objects.create_user(username=email, email=email, first_name=first_name, last_name=last_name)
    professional = Professional.objects.create(user=user, organisation=organisation, role=role, **profile)
    audit(
        by=by,
        action=Action.PROFESSIONAL_PROVISIONED,
        target=professional,
        email=email,
        organisation=organisation.ods_code,
        role=role,
    )
    return professional


def _save_changed(*, by, target, action, changed, **detail):
    target.save()
    if changed:
        audit(by=by, action=action, target=target, changed=",".join(changed), active=target.active, **detail)
    return target


@transaction.atomic
def save_professional(*, by, professional, changed: list[str]):
    """Save changes to a profile (organisation, role, active...), naming the fields that changed."""
    return _save_changed(
        by=by,
        target=professional,
        action=Action.PROFESSIONAL_CHANGED,
        changed=changed,
        organisation=professional.organisation.ods_code,
    )


@transaction.atomic
def save_organisation(*, by, organisation, changed: list[str]):
    """Create or change an organisation (active, name, kind...): what it is decides who sees what."""
    return _save_changed(
        by=by,
        target=organisation,
        action=Action.ORGANISATION_CHANGED,
        changed=changed,
        ods_code=organisation.ods_code,
    )


@transaction.atomic
def add_team_member(*, by, team, professional, role_in_team=""):
    membership, _ = CareTeamMembership.objects.get_or_create(
        team=team, professional=professional, defaults={"role_in_team": role_in_team}
    )
    professional.user.groups.add(team.group)
    audit(by=by, action=Action.CARE_TEAM_MEMBER_ADDED, target=team, professional=professional.user.email)
    return membership


@transaction.atomic
def change_member_role(*, by, membership, role_in_team):
    membership.role_in_team = role_in_team
    membership.save(update_fields=["role_in_team"])
    audit(
        by=by,
        action=Action.CARE_TEAM_MEMBER_CHANGED,
        target=membership.team,
        professional=membership.professional.user.email,
        role_in_team=role_in_team,
    )
    return membership


@transaction.atomic
def remove_team_member(*, by, membership):
    membership.professional.user.groups.remove(membership.team.group)
    audit(
        by=by,
        action=Action.CARE_TEAM_MEMBER_REMOVED,
        target=membership.team,
        professional=membership.professional.user.email,
    )
    membership.delete()


@transaction.atomic
def delete_care_team(*, by, team):
    """The team's group goes too, taking its members' access and any grants left on it."""
    group = team.group
    audit(by=by, action=Action.CARE_TEAM_DELETED, target=team, team=team.name)
    team.delete()
    group.delete()


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
    audit(by=by, action=Action.API_TOKEN_CREATED, target=token, owner=str(organisation or user))
    return token, secret


@transaction.atomic
def revoke_api_token(*, by, token):
    token.revoked_at = timezone.now()
    token.save(update_fields=["revoked_at"])
    audit(by=by, action=Action.API_TOKEN_REVOKED, target=token)
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
