"""Break glass: the one write a refused professional can make, and only with a reason."""

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from optout.state import has_upheld_objection
from patients.models import Patient
from sharing import actions
from sharing.access import Reason, can_search, decide

from ..forms import BreakGlassForm


@require_POST
def break_glass(request, patient_id):
    if not can_search(request.user):
        raise PermissionDenied("Only an active professional can request emergency access.")
    patient = Patient.objects.filter(pk=patient_id).first()
    decision = decide(request.user, patient) if patient else None
    if decision and decision.allowed:
        return redirect("record-summary", patient_id=patient_id)
    form = BreakGlassForm(request.POST)
    if patient and decision.reason == Reason.NO_RELATIONSHIP and form.is_valid():
        actions.break_glass(
            by=request.user,
            patient=patient,
            reason_code=form.cleaned_data["reason_code"],
            reason_text=form.cleaned_data["reason_text"],
        )
        then = "record-emergency" if request.POST.get("then") == "emergency" else "record-summary"
        return redirect(then, patient_id=patient_id)
    # Invalid form, or no such patient: the same refusal page as before, so nothing is revealed (but an upheld
    # objection, which the form states before the clinician confirms, as the refusal page did).
    context = {
        "record_refused": True,
        "break_glass_form": form,
        "break_glass_hours": settings.BREAK_GLASS_HOURS,
        "patient_id": patient_id,
        "offer_break_glass": True,
        "objection_upheld": bool(patient) and has_upheld_objection(patient),
        "break_glass_then": "emergency" if request.POST.get("then") == "emergency" else "",
    }
    return render(request, "403.html", context, status=403)
