"""Audited writes for the directory: provisioning and changing professionals, organisations, care-team
membership (which is access: a team's members are its Django group's users) and API tokens. Admin, feeds,
commands and tests call these rather than saving the models themselves.

Rules kept here, whoever calls:
- Nobody changes their own professional profile's organisation or active flag (which would change what
  counts as "their own" entries, or switch their own access back on), nor switches off their own
  organisation: another IG officer must.
- A care team's members work for the team's organisation; moving a professional to another organisation
  takes them out of the teams of the one they left.
- Deactivating an account (User.is_active, through `directory.signals` whoever saves it), a professional or an
  organisation ends access at once: their sessions are deleted and their API tokens revoked (an
  organisation's: every one of its professionals' and its own), in one audited step (`end_access`).
- A professional's API token expires (PERSONAL_TOKEN_HOURS unless IG choose); an organisation's may not.
- Organisations a feed adds are not listed on the public partners page until IG approve them
  (`set_organisation_listed`).
"""

import datetime
import hashlib
import secrets
from importlib import import_module

from django.conf import settings
from django.contrib.auth import SESSION_KEY, get_user_model
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from audit.names import Action
from audit.writers import audit

from .models import ApiToken, CareTeamMembership, Organisation, Professional, RoleProfile, check_same_organisation

# What nobody may change on their own professional profile.
NOT_ON_YOUR_OWN_PROFILE = ("organisation", "active")
DEFAULT_PERSONAL_TOKEN_HOURS = 8
_KEEP = object()


@transaction.atomic
def provision_professional(
    *, by, email, first_name, last_name, organisation, role, via="admin", username="", **profile
):
    """Create a sign-in account (no usable password until they set one) with its professional profile. `via`:
    "admin", or "single sign-on" for a just-in-time first sign-in (by = None: the provider vouched for them)."""
    user = get_user_model().objects.create_user(
        username=username or email, email=email, first_name=first_name, last_name=last_name
    )
    professional = Professional.objects.create(user=user, organisation=organisation, role=role, **profile)
    audit(
        by=by,
        action=Action.PROFESSIONAL_PROVISIONED,
        target=professional,
        email=email,
        organisation=organisation.ods_code,
        role=role,
        via=via,
    )
    return professional


@transaction.atomic
def add_role_profile(*, by, professional, organisation, role, via="admin", **fields):
    """A further role profile (organisation + role) for a professional, audited. From a sign-in (`via` "single
    sign-on") only where that organisation provisions just-in-time; the caller checks."""
    role_profile = RoleProfile.objects.create(
        professional=professional, organisation=organisation, role=role, from_sign_in=via != "admin", **fields
    )
    audit(
        by=by,
        action=Action.PROFESSIONAL_CHANGED,
        target=professional,
        changed="role_profiles",
        role_profile_added=f"{role} at {organisation.ods_code}",
        via=via,
    )
    return role_profile


@transaction.atomic
def save_role_profile(*, by, role_profile, changed: list[str], via="admin"):
    """Save a role profile's changes, audited; switched off (or moved away), its organisation's team
    memberships go unless the professional works there otherwise, and their sessions end (a session may be
    acting in it)."""
    role_profile.save()
    professional = role_profile.professional
    if changed:
        audit(
            by=by,
            action=Action.PROFESSIONAL_CHANGED,
            target=professional,
            changed="role_profiles",
            role_profile=f"{role_profile.role} at {role_profile.organisation.ods_code}",
            fields=",".join(changed),
            active=role_profile.active,
            via=via,
        )
    if {"active", "organisation"} & set(changed):
        _leave_teams_elsewhere(by=by, professional=professional)
        if not role_profile.active and via == "admin":
            end_access(by=by, target=professional, user_ids=[professional.user_id], reason="role-profile-deactivated")
    return role_profile


def _leave_teams_elsewhere(*, by, professional):
    """Out of the teams of organisations the professional no longer works for (home or an active role)."""
    works_for = {professional.organisation_id} | set(
        professional.role_profiles.filter(active=True).values_list("organisation_id", flat=True)
    )
    elsewhere = professional.memberships.exclude(team__organisation_id__in=works_for)
    for membership in elsewhere.select_related("team", "professional__user"):
        remove_team_member(by=by, membership=membership)


def _save_changed(*, by, target, action, changed, **detail):
    target.save()
    if changed:
        audit(by=by, action=action, target=target, changed=",".join(changed), active=target.active, **detail)
    return target


def check_professional_change(*, by, professional, changed):
    """PermissionDenied when `by` would change their own profile's organisation or active flag."""
    own = by is not None and professional.user_id is not None and professional.user_id == by.pk
    if own and set(NOT_ON_YOUR_OWN_PROFILE) & set(changed):
        raise PermissionDenied(
            "You cannot change the organisation or the active status of your own profile: ask another IG officer."
        )


@transaction.atomic
def save_professional(*, by, professional, changed: list[str]):
    """Save changes to a profile (organisation, role, active...), naming the fields that changed.

    A move to another organisation takes them out of the teams of the organisation they left; switching the
    profile off ends their sessions and revokes their tokens."""
    check_professional_change(by=by, professional=professional, changed=changed)
    _save_changed(
        by=by,
        target=professional,
        action=Action.PROFESSIONAL_CHANGED,
        changed=changed,
        organisation=professional.organisation.ods_code,
    )
    if "organisation" in changed:
        _leave_teams_elsewhere(by=by, professional=professional)
    if "active" in changed and not professional.active:
        end_access(by=by, target=professional, user_ids=[professional.user_id], reason="professional-deactivated")
    return professional


def move_professional(*, by, professional, organisation):
    check_professional_change(by=by, professional=professional, changed=["organisation"])
    professional.organisation = organisation
    return save_professional(by=by, professional=professional, changed=["organisation"])


def deactivate_professional(*, by, professional):
    check_professional_change(by=by, professional=professional, changed=["active"])
    professional.active = False
    return save_professional(by=by, professional=professional, changed=["active"])


@transaction.atomic
def deactivate_user(*, by, user):
    """Switch a sign-in account off; `directory.signals` ends its sessions and revokes its tokens."""
    user.is_active = False
    user._carerecord_changed_by = by
    user.save(update_fields=["is_active"])
    return user


def check_organisation_change(*, by, organisation, changed, active=None):
    """PermissionDenied when `by` would switch off the organisation their own profile belongs to (`active`:
    the new value, when not yet set on the organisation)."""
    active = organisation.active if active is None else active
    switching_off = "active" in changed and not active and not organisation._state.adding
    if switching_off and by is not None and Professional.objects.filter(user=by, organisation=organisation).exists():
        raise PermissionDenied("You cannot switch off your own organisation: ask another IG officer.")


@transaction.atomic
def save_organisation(*, by, organisation, changed: list[str]):
    """Create or change an organisation (active, name, kind...): what it is decides who sees what.

    Switching it off ends every one of its professionals' sessions and revokes their tokens and its own."""
    check_organisation_change(by=by, organisation=organisation, changed=changed)
    new = organisation._state.adding
    _save_changed(
        by=by,
        target=organisation,
        action=Action.ORGANISATION_CHANGED,
        changed=changed,
        ods_code=organisation.ods_code,
    )
    if not new and "active" in changed and not organisation.active:
        end_access(
            by=by,
            target=organisation,
            user_ids=list(Professional.objects.filter(organisation=organisation).values_list("user_id", flat=True)),
            organisation=organisation,
            reason="organisation-deactivated",
        )
    return organisation


@transaction.atomic
def set_organisation_listed(*, by, organisation, listed: bool):
    """IG approve an organisation for the public partners page (or take it off). Nothing when unchanged."""
    if organisation.listed == listed:
        return organisation
    organisation.listed = listed
    organisation.save(update_fields=["listed"])
    audit(
        by=by,
        action=Action.ORGANISATION_LISTED if listed else Action.ORGANISATION_UNLISTED,
        target=organisation,
        ods_code=organisation.ods_code,
        name=organisation.name,
    )
    return organisation


@transaction.atomic
def end_access(*, by, target, user_ids, reason, organisation=None):
    """At once: delete the sessions of these users and revoke their API tokens (and the organisation's), with
    one audit row naming the target and how many of each ended."""
    user_ids = {pk for pk in user_ids if pk is not None}
    sessions = _delete_sessions(user_ids)
    owners = Q(user_id__in=user_ids)
    if organisation is not None:
        owners |= Q(organisation=organisation)
    tokens = list(ApiToken.objects.filter(owners, revoked_at=None))
    for token in tokens:
        revoke_api_token(by=by, token=token, reason=reason)
    audit(by=by, action=Action.ACCESS_ENDED, target=target, reason=reason, sessions=sessions, tokens=len(tokens))
    return sessions, len(tokens)


def _delete_sessions(user_ids) -> int:
    """Delete every live session signed in as one of these users.

    Sessions are database-backed; a session row keeps its user id only inside its encoded data, so each live
    session is decoded. Deactivations are rare and sessions live SESSION_IDLE_MINUTES idle, so that is a small
    table read. Deleted through the session store, so a cached_db engine's cache goes too."""
    if not user_ids:
        return 0
    wanted = {str(pk) for pk in user_ids}
    store = import_module(settings.SESSION_ENGINE).SessionStore
    live = store.get_model_class().objects.filter(expire_date__gt=timezone.now())
    doomed = [session.session_key for session in live.iterator() if session.get_decoded().get(SESSION_KEY) in wanted]
    for session_key in doomed:
        store(session_key=session_key).delete()
    return len(doomed)


@transaction.atomic
def add_team_member(*, by, team, professional, role_in_team="", review_on=None):
    """ValidationError unless the professional works for the team's organisation."""
    check_same_organisation(team, professional)
    membership, _ = CareTeamMembership.objects.get_or_create(
        team=team, professional=professional, defaults={"role_in_team": role_in_team, "review_on": review_on}
    )
    professional.user.groups.add(team.group)
    audit(by=by, action=Action.CARE_TEAM_MEMBER_ADDED, target=team, professional=professional.user.email)
    return membership


@transaction.atomic
def change_member_role(*, by, membership, role_in_team, review_on=_KEEP):
    """Change a member's role in the team and, when given, the date their membership is next reviewed."""
    fields = {"role_in_team": role_in_team}
    if review_on is not _KEEP:
        fields["review_on"] = review_on
    for name, value in fields.items():
        setattr(membership, name, value)
    membership.save(update_fields=list(fields))
    audit(
        by=by,
        action=Action.CARE_TEAM_MEMBER_CHANGED,
        target=membership.team,
        professional=membership.professional.user.email,
        **{name: "" if value is None else value for name, value in fields.items()},
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


def personal_token_hours() -> float:
    return getattr(settings, "PERSONAL_TOKEN_HOURS", DEFAULT_PERSONAL_TOKEN_HOURS)


@transaction.atomic
def create_api_token(*, by, name, organisation=None, user=None, hours=None):
    """Create a token for an organisation (to send) or a professional (to read). Returns (token, secret):
    the secret is shown once and only its hash is kept.

    A professional's token lasts `hours` (PERSONAL_TOKEN_HOURS unless given); an organisation's lasts `hours`
    when given and otherwise until revoked."""
    if user is not None and hours is None:
        hours = personal_token_hours()
    if hours is not None and hours <= 0:
        raise ValueError("A token's lifetime is a positive number of hours.")
    now = timezone.now()
    expires_at = now + datetime.timedelta(hours=hours) if hours is not None else None
    secret = secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        name=name,
        created_at=now,
        prefix=secret[:8],
        key_hash=hashlib.sha256(secret.encode()).hexdigest(),
        organisation=organisation,
        user=user,
        expires_at=expires_at,
    )
    audit(
        by=by,
        action=Action.API_TOKEN_CREATED,
        target=token,
        owner=str(organisation or user),
        expires_at=expires_at.isoformat() if expires_at else "never",
    )
    return token, secret


@transaction.atomic
def revoke_api_token(*, by, token, reason=""):
    token.revoked_at = timezone.now()
    token.save(update_fields=["revoked_at"])
    audit(by=by, action=Action.API_TOKEN_REVOKED, target=token, **({"reason": reason} if reason else {}))
    return token


# How often a token's "last used" time is written: to the minute is what IG need to see a token is live or
# forgotten, and writing it on every request was a commit per FHIR read (issue 19).
TOKEN_USE_RESOLUTION = datetime.timedelta(seconds=60)


def api_token_for(secret: str):
    """The token with this secret, or None when there is none or it is revoked or expired: one query, which
    also brings a personal token's professional profile and organisation (the access decision reads them)."""
    if not secret:
        return None
    digest = hashlib.sha256(secret.encode()).hexdigest()
    now = timezone.now()
    found = (
        ApiToken.objects.select_related("organisation", "user__professional__organisation")
        .filter(key_hash=digest, revoked_at=None)
        .filter(Q(expires_at=None) | Q(expires_at__gt=now))
        .order_by()[:1]  # the key is unique: no ORDER BY to build or run
    )
    token = next(iter(found), None)
    if token is not None and (token.last_used_at is None or token.last_used_at <= now - TOKEN_USE_RESOLUTION):
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token


# How often the "last received" time is written: it says whether a feed is live, to the minute, and writing it
# on every submission would make a busy feed's submissions queue on its organisation's row.
RECEIVED_RESOLUTION = datetime.timedelta(seconds=60)


def note_received(organisation, at=None) -> None:
    """Record that carerecord received something from `organisation` (the record's freshness, per source).

    Not an audited change: it is a fact about the feed, not an act of a person; the submission itself is
    audited where it is imported."""
    at = at or timezone.now()
    noted = organisation.last_received_at
    if noted is not None and at - RECEIVED_RESOLUTION <= noted <= at:
        return  # this instance wrote it within the resolution (a listener keeps its feed's): no statement
    written = (
        Organisation.objects.filter(pk=organisation.pk)
        .filter(Q(last_received_at__isnull=True) | Q(last_received_at__lt=at - RECEIVED_RESOLUTION))
        .update(last_received_at=at)
    )
    if written:
        organisation.last_received_at = at
