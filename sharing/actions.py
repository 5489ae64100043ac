"""Audited writes for sharing: involvements (which grant and revoke access), break glass and its review,
sharing agreements, problems reported with entries. Views, admin, feeds, commands and tests call these rather than
writing the models.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone
from guardian.shortcuts import assign_perm, remove_perm
from guardian.utils import get_group_obj_perms_model

from audit.names import Action
from audit.writers import audit
from directory.profiles import professional_for
from patients.models import Patient

from . import problems
from .models import VIEW_PERMISSION, BreakGlass, EntryProblem, Involvement, SharingAgreement

logger = logging.getLogger(__name__)

PATIENT_READ_PERMISSION = f"patients.{VIEW_PERMISSION}"  # "patients.read_shared_record", per patient only


def review_date(*, ended_at=None, today=None):
    """When a relationship should next be looked at: INVOLVEMENT_REVIEW_DAYS (default 365; 0 for none) from
    `today`, unless it ends on or before that day anyway (then None: it needs no review, it stops)."""
    days = getattr(settings, "INVOLVEMENT_REVIEW_DAYS", 365)
    if not days:
        return None
    due = (today or timezone.localdate()) + timedelta(days=days)
    if ended_at is not None and timezone.localdate(ended_at) <= due:
        return None
    return due


def _token_detail(token) -> dict:
    """What an involvement's audit row says about the partner system's token it came with."""
    if token is None:
        return {}
    return {"token": token.pk, "token_prefix": token.prefix, "organisation": token.organisation.ods_code}


_DEFAULT_REVIEW = object()


@transaction.atomic
def start_involvement(
    *,
    by,
    patient,
    care_team,
    reason,
    started_at=None,
    ended_at=None,
    source_id="",
    token=None,
    review_on=_DEFAULT_REVIEW,
):
    """Record that a team is involved in a patient's care, and grant the team access at once.

    `token`: the organisation's API token a partner system asserted it with. An organisation asserts
    involvements only for its own teams (ValueError otherwise). The involvement keeps the token and who asserted
    it, waits for IG's review, and gets a review date (`review_date()`) unless `review_on` is given (None: none).
    Without a token there is no review date unless one is given."""
    if token is not None and (token.organisation_id is None or token.organisation_id != care_team.organisation_id):
        raise ValueError("An organisation's token asserts involvements only for that organisation's own teams.")
    if review_on is _DEFAULT_REVIEW:
        review_on = review_date(ended_at=ended_at) if token is not None else None
    involvement = Involvement.objects.create(
        patient=patient,
        care_team=care_team,
        reason=reason,
        started_at=started_at or timezone.now(),
        ended_at=ended_at,
        source_id=source_id,
        asserted_by=(getattr(by, "email", "") or "")[:254],
        asserted_by_token=token,
        review_on=review_on,
    )
    sync_team_access(patient=patient, care_team=care_team)
    detail = {"team": care_team.name, **_token_detail(token)}
    if review_on is not None:
        detail["review_on"] = review_on
    audit(by=by, action=Action.INVOLVEMENT_STARTED, target=involvement, patient_id=patient.pk, **detail)
    return involvement


@transaction.atomic
def update_involvement(*, by, involvement, token=None, **changes):
    """Change an involvement's period, reason or review date (e.g. a partner re-sends it); access follows at once.
    A value cleared (an end date taken away) is audited as "" rather than "None".

    With `token` (a partner system re-sending it) the audit row names the token, and if the change makes an
    ended involvement current again it is a new assertion: it goes back to IG's review queue with a new date."""
    was_current = involvement.is_current
    for name, value in changes.items():
        setattr(involvement, name, value)
    if token is not None and not was_current and involvement.is_current:
        changes.update(reviewed_at=None, reviewed_by=None, review_on=review_date(ended_at=involvement.ended_at))
        for name in ("reviewed_at", "reviewed_by", "review_on"):
            setattr(involvement, name, changes[name])
    involvement.save(update_fields=list(changes))
    sync_team_access(patient=involvement.patient, care_team=involvement.care_team)
    audit(
        by=by,
        action=Action.INVOLVEMENT_UPDATED,
        target=involvement,
        patient_id=involvement.patient_id,
        **{name: "" if value is None else value for name, value in changes.items()},
        **_token_detail(token),
    )
    return involvement


@transaction.atomic
def end_involvement(*, by, involvement, ended_at=None, token=None):
    """End an involvement; the team loses access at once unless another current involvement remains."""
    involvement.ended_at = ended_at or timezone.now()
    involvement.save(update_fields=["ended_at"])
    sync_team_access(patient=involvement.patient, care_team=involvement.care_team)
    audit(
        by=by,
        action=Action.INVOLVEMENT_ENDED,
        target=involvement,
        patient_id=involvement.patient_id,
        **_token_detail(token),
    )
    return involvement


@transaction.atomic
def review_involvement(*, by, involvement, note="", review_on=None):
    """IG's review of an involvement (above all those partner systems asserted): it leaves the review queue, and
    its next review date is `review_on`, else `review_date()` from today while it lasts. Audited. Ending one
    that should not be there is `end_involvement`, which the admin calls in the same save."""
    if by is None:
        raise ValueError("A review is made by someone.")
    involvement.reviewed_at = timezone.now()
    involvement.reviewed_by = by
    involvement.review_note = note.strip()
    if review_on is None and involvement.is_current:
        review_on = review_date(ended_at=involvement.ended_at)
    involvement.review_on = review_on
    involvement.save(update_fields=["reviewed_at", "reviewed_by", "review_note", "review_on"])
    audit(
        by=by,
        action=Action.INVOLVEMENT_REVIEWED,
        target=involvement,
        patient_id=involvement.patient_id,
        note=involvement.review_note,
        review_on="" if review_on is None else review_on,
        asserted_by=involvement.asserted_by,
    )
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


@transaction.atomic
def report_entry_problem(*, by, patient, entry, what_is_wrong):
    """A professional reports that an entry looks wrong (the view found it among what they may see): recorded,
    sent to the source organisation's nominated contact, and audited with what became of it, in one transaction.
    Sent: passed on (`sent_to`, `sent_at`). No contact, or the email could not go (logged, never raised, so the
    report is kept all the same): it stays open, not sent, and IG pass it on from admin."""
    if entry.patient_id != patient.pk:
        raise ValueError("The entry is not this patient's.")
    professional = professional_for(by)
    source = entry.source_organisation
    problem = EntryProblem.objects.create(
        patient=patient,
        source_organisation=source,
        entry_model=entry._meta.label_lower,
        entry_id=str(entry.pk),
        entry_summary=problems.describe(entry),
        reported_by=by,
        reporter_name=professional.name[:200],
        reporter_organisation_code=professional.organisation.ods_code,
        what_is_wrong=what_is_wrong.strip(),
    )
    not_sent = "no contact" if not source.problem_contact_email else ""
    if not not_sent:
        subject, body = problems.email_for(problem=problem, entry=entry, professional=professional)
        try:
            send_mail(
                subject=subject,
                message=body,
                from_email=settings.DEFAULT_FROM_EMAIL,
                recipient_list=[source.problem_contact_email],
            )
        except Exception:  # any backend's failure: the report is kept, and IG pass it on
            logger.exception("Entry problem %s could not be emailed to its source's contact; left for IG", problem.pk)
            not_sent = "email failed"
    if not not_sent:
        problem.sent_to = source.problem_contact_email
        problem.sent_at = timezone.now()
        problem.status = EntryProblem.Status.PASSED_ON
        problem.save(update_fields=["sent_to", "sent_at", "status"])
    audit(
        by=by,
        action=Action.ENTRY_PROBLEM_REPORTED,
        target=problem,
        patient_id=patient.pk,
        organisation=source.ods_code,
        entry=f"{problem.entry_model}:{problem.entry_id}",
        source_id=entry.source_id,
        sent_to=problem.sent_to,
        not_sent=not_sent,
    )
    return problem


@transaction.atomic
def change_entry_problem(*, by, problem, status, ig_note=""):
    """IG's follow-up of a reported problem (admin): its status and note. Audited with what changed, the status it
    had before; nothing changed, nothing written."""
    if status not in EntryProblem.Status.values:
        raise ValueError(f"Not an entry problem status: {status!r}")
    stored = EntryProblem.objects.select_for_update().get(pk=problem.pk)
    changes = {
        name: value
        for name, value in (("status", status), ("ig_note", ig_note.strip()))
        if getattr(stored, name) != value
    }
    if not changes:
        return problem
    for name, value in changes.items():
        setattr(problem, name, value)
    problem.save(update_fields=list(changes))
    audit(
        by=by,
        action=Action.ENTRY_PROBLEM_CHANGED,
        target=problem,
        patient_id=problem.patient_id,
        previous_status=stored.status,
        **changes,
    )
    return problem


def sync_team_access(*, patient, care_team):
    """Make the team's grant on the patient match whether it has a current involvement."""
    current = Involvement.objects.current().filter(patient=patient, care_team=care_team).exists()
    if current:
        assign_perm(PATIENT_READ_PERMISSION, care_team.group, patient)
    else:
        remove_perm(PATIENT_READ_PERMISSION, care_team.group, patient)
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
        assign_perm(PATIENT_READ_PERMISSION, involvement.care_team.group, involvement.patient)
        granted += 1
    return granted, revoked
