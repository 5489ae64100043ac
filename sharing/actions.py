"""Audited writes for sharing: involvements (which grant and revoke access), break glass and its review,
sharing agreements. Views, admin, feeds, commands and tests call these rather than writing the models.
"""

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone
from guardian.shortcuts import assign_perm, remove_perm
from guardian.utils import get_group_obj_perms_model

from audit.names import Action
from audit.writers import audit
from directory.profiles import professional_for
from patients.models import Patient

from .models import VIEW_PERMISSION, BreakGlass, Involvement, SharingAgreement

PATIENT_VIEW_PERMISSION = f"patients.{VIEW_PERMISSION}"


@transaction.atomic
def start_involvement(*, by, patient, care_team, reason, started_at=None, ended_at=None, source_id=""):
    """Record that a team is involved in a patient's care, and grant the team access at once."""
    involvement = Involvement.objects.create(
        patient=patient,
        care_team=care_team,
        reason=reason,
        started_at=started_at or timezone.now(),
        ended_at=ended_at,
        source_id=source_id,
    )
    sync_team_access(patient=patient, care_team=care_team)
    audit(by=by, action=Action.INVOLVEMENT_STARTED, target=involvement, patient_id=patient.pk, team=care_team.name)
    return involvement


@transaction.atomic
def update_involvement(*, by, involvement, **changes):
    """Change an involvement's period or reason (e.g. a partner re-sends it); access follows at once.
    A value cleared (an end date taken away) is audited as "" rather than "None"."""
    for name, value in changes.items():
        setattr(involvement, name, value)
    involvement.save(update_fields=list(changes))
    sync_team_access(patient=involvement.patient, care_team=involvement.care_team)
    audit(
        by=by,
        action=Action.INVOLVEMENT_UPDATED,
        target=involvement,
        patient_id=involvement.patient_id,
        **{name: "" if value is None else value for name, value in changes.items()},
    )
    return involvement


@transaction.atomic
def end_involvement(*, by, involvement, ended_at=None):
    """End an involvement; the team loses access at once unless another current involvement remains."""
    involvement.ended_at = ended_at or timezone.now()
    involvement.save(update_fields=["ended_at"])
    sync_team_access(patient=involvement.patient, care_team=involvement.care_team)
    audit(by=by, action=Action.INVOLVEMENT_ENDED, target=involvement, patient_id=involvement.patient_id)
    return involvement


@transaction.atomic
def reopen_involvement(*, by, involvement):
    """Take away an involvement's end date (ended by mistake): the team's access comes back at once."""
    involvement.ended_at = None
    involvement.save(update_fields=["ended_at"])
    sync_team_access(patient=involvement.patient, care_team=involvement.care_team)
    audit(by=by, action=Action.INVOLVEMENT_REOPENED, target=involvement, patient_id=involvement.patient_id)
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
    audit(by=by, action=Action.BREAK_GLASS_STARTED, target=grant, patient_id=patient.pk, reason=reason_code)
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
        action=Action.BREAK_GLASS_REVIEWED,
        target=break_glass,
        patient_id=break_glass.patient_id,
        outcome=outcome,
        note=note,
    )
    return break_glass


@transaction.atomic
def save_sharing_agreement(*, by, agreement):
    """Create or change what an organisation shares: it decides what everyone else sees from the next request."""
    agreement.save()
    audit(
        by=by,
        action=Action.SHARING_AGREEMENT_CHANGED,
        target=agreement,
        organisation=agreement.organisation.ods_code,
        category=agreement.category,
        shares=agreement.shares,
        since=agreement.since,
    )
    return agreement


@transaction.atomic
def set_sharing(*, by, organisation, category, shares=True, since=None):
    """The agreement for one organisation and category, created or changed (for commands, feeds and the demo)."""
    agreement = SharingAgreement.objects.filter(organisation=organisation, category=category).first()
    agreement = agreement or SharingAgreement(organisation=organisation, category=category)
    agreement.shares = shares
    if since is not None:
        agreement.since = since
    return save_sharing_agreement(by=by, agreement=agreement)


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
