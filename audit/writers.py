"""The ways a row reaches the audit trail: a change (`audit`), a look at a record (`record_access`), a page
listing patients (`record_shown`: a search, "my patients") and IG's look-ups in admin (`record_admin_view`).
Callers pass values (the decision, the professional); nothing here reads another app, so every layer above can
write to the trail.
"""

from .models import AccessBasis, AccessEvent, AccessOutcome, AuditEvent
from .names import Action


def role_of(professional) -> str:
    """The role a professional acts in (their role profile's, when acting in one): job title, else its name."""
    if professional is None:
        return ""
    return (professional.job_title or professional.get_role_display())[:200]


def audit(*, by, action: Action, target, patient_id=None, **detail):
    """Write one AuditEvent for an IG-relevant change; call inside the change's transaction."""
    return AuditEvent.objects.create(
        actor_id=by.pk if by else None,
        actor_email=by.email if by else "",
        action=Action(action),
        target_type=type(target).__name__,
        target_id=str(target.pk),
        patient_id=patient_id,
        detail={key: str(value) for key, value in detail.items()},
    )


def record_access(*, request, patient, decision, page, patient_id=None, launch=""):
    """Write one AccessEvent for a page that showed, or refused, a patient's record.

    `decision` is the access decision (allowed, basis, reason and the viewer's professional profile); `launch`
    names the in-context launch that opened it, when one did."""
    user = request.user if getattr(request.user, "is_authenticated", False) else None
    professional = decision.professional
    return AccessEvent.objects.create(
        user_id=user.pk if user else None,
        user_email=user.email if user else "",
        professional_name=professional.name if professional else "",
        professional_role=role_of(professional),
        organisation_code=professional.organisation.ods_code if professional else "",
        patient_id=patient.pk if patient else patient_id,
        patient_nhs_number=patient.nhs_number if patient else "",
        outcome=AccessOutcome.ALLOWED if decision.allowed else AccessOutcome.REFUSED,
        basis=decision.basis,
        reason="" if decision.allowed else decision.reason,
        page=page,
        path=request.get_full_path()[:500],
        request_id=getattr(request, "request_id", ""),
        launch=launch[:300],
    )


def record_shown(*, request, professional, patients, page, basis=AccessBasis.NONE, record_none=False):
    """A page that lists patients' demographics without opening a record (a search, "my patients", IG's pages in
    admin) writes one AccessEvent per patient shown, once per page view, so each of them finds it in "who has
    seen my record". With `record_none`, a page that showed nobody writes one row naming no patient (a search
    that found no one is still a search). The path is kept without its query: search terms stay out of the trail.
    """
    user = request.user if getattr(request.user, "is_authenticated", False) else None
    common = {
        "user_id": user.pk if user else None,
        "user_email": user.email if user else "",
        "professional_name": professional.name if professional else "",
        "professional_role": role_of(professional),
        "organisation_code": professional.organisation.ods_code if professional else "",
        "outcome": AccessOutcome.ALLOWED,
        "basis": basis,
        "page": page,
        "path": request.path[:500],
        "request_id": getattr(request, "request_id", ""),
    }
    shown = {patient.pk: patient for patient in patients}  # once each, in the order shown
    rows = [AccessEvent(patient_id=p.pk, patient_nhs_number=p.nhs_number, **common) for p in shown.values()]
    if not rows and record_none:
        rows = [AccessEvent(reason="no-match", **common)]
    return AccessEvent.objects.bulk_create(rows)


def record_search(*, request, professional, by, patients):
    """Searches show demographics, so they are logged too: one row per patient found (none if none)."""
    return record_shown(
        request=request, professional=professional, patients=patients, page=f"search:{by}", record_none=True
    )


def record_admin_view(*, request, professional, patients, page, record_none=False):
    """Patients' details shown in Django admin (IG's work: finding a patient, matching an objection, reviewing
    break glass, a problem reported with an entry): basis "ig-admin", one row per patient shown, once per page view.
    Admin shows no clinical record — only a reported entry's short description as the reporter saw it; these rows
    put IG's look-ups beside everyone else's in "who has seen this record"."""
    if not page.startswith("admin:"):
        raise ValueError(f"an admin page name starts with 'admin:' (got {page!r})")
    return record_shown(
        request=request,
        professional=professional,
        patients=patients,
        page=page,
        basis=AccessBasis.IG_ADMIN,
        record_none=record_none,
    )
