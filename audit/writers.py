"""The three ways a row reaches the audit trail: a change (`audit`), a look at a record (`record_access`) and
a search (`record_search`). Callers pass values (the decision, the professional); nothing here reads another
app, so every layer above can write to the trail.
"""

from .models import AccessBasis, AccessEvent, AccessOutcome, AuditEvent
from .names import Action


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


def record_access(*, request, patient, decision, page, patient_id=None):
    """Write one AccessEvent for a page that showed, or refused, a patient's record.

    `decision` is the access decision (allowed, basis, reason and the viewer's professional profile)."""
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


def record_search(*, request, professional, by, patients):
    """Searches show demographics, so they are logged too: one row per patient found (none if none)."""
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
