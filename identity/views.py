"""Launch in context: /launch/, where a partner's clinical system sends the browser with a signed token, and
/launch/continue/, where the sign-in a launch may need comes back to. Thin: identity.launch decides, identity.actions
writes, and the record page the launch ends on makes the access decision as it does for everyone (sharing.access).

Both ways through open the record from /launch/continue/, so the token never reaches the path an AccessEvent keeps.
"""

from django.contrib.auth.decorators import login_not_required
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods

from patients.models import Patient
from sharing.access import LAUNCH_SESSION_KEY, RecordAccessDenied, get_patient_for

from . import actions, sso
from . import launch as launching
from .launch import LaunchRefused, Reason


@login_not_required
@csrf_exempt  # the signed token is the proof of where the request came from; there is no form of ours to forge
@require_http_methods(["GET", "POST"])
def launch(request):
    params = request.POST if request.method == "POST" else request.GET
    try:
        verified = launching.verify(
            params.get("launch", ""), audience=launching.audience(request), issuer=params.get("iss", "")
        )
        actions.use_token(verified)
    except LaunchRefused as refusal:
        return _refuse(request, refusal)
    if not request.user.is_authenticated and not sso.enabled():
        return _refuse(request, LaunchRefused(Reason.SSO_NOT_ENABLED, partner=verified.partner, jti=verified.jti))
    launching.keep_pending(request.session, verified)
    if request.user.is_authenticated:
        return redirect("launch-continue")
    return sso.redirect_to_sign_in(request, next_url=reverse("launch-continue"), silent=True)


@require_GET
def launch_continue(request):
    pending = None
    try:
        pending = launching.take_pending(request.session)
        launching.check_user(pending, sso.subject_of(request.user))
    except LaunchRefused as refusal:
        named = pending.sub if pending is not None and refusal.reason == Reason.USER_MISMATCH else ""
        return _refuse(request, refusal, subject=named)
    patient = Patient.objects.filter(nhs_number=pending.nhs_number).first()
    if patient is None:
        _no_such_patient(request, pending)
    request.session[LAUNCH_SESSION_KEY] = {"patient_id": str(patient.pk), "label": pending.label}
    actions.launched(by=request.user, launch=pending, patient=patient, request_id=_request_id(request))
    return redirect("record-summary", patient_id=patient.pk)


def _no_such_patient(request, pending):
    """No patient has that NHS number: the record pages' own refusal (their 403 page, their AccessEvent, from the
    one access decision), so a launch cannot tell "no such patient" from "not yours" either."""
    try:
        get_patient_for(request, None, page="launch")
    except RecordAccessDenied:
        refusal = LaunchRefused(Reason.NO_SUCH_PATIENT, partner=pending.partner, jti=pending.jti)
        actions.refused(by=request.user, refusal=refusal, request_id=_request_id(request))
        raise
    raise AssertionError("the access decision opened a record without a patient")  # pragma: no cover


def _refuse(request, refusal: LaunchRefused, *, subject: str = ""):
    """The "We could not open this record" page; audited; nothing is left waiting (the user stays signed in)."""
    launching.drop_pending(request.session)
    actions.refused(by=request.user, refusal=refusal, request_id=_request_id(request), subject=subject)
    context = {
        "explanation": refusal.explanation,
        "try_again": refusal.try_again,
        "reference": _request_id(request),
    }
    return render(request, "identity/launch_refused.html", context, status=refusal.status)


def _request_id(request) -> str:
    return getattr(request, "request_id", "")
