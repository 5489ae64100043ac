"""The refusal page: one page for 'not allowed' and 'no such patient', offering break glass where it may."""

from django.conf import settings
from django.shortcuts import render

from optout.state import has_upheld_objection
from sharing.access import RecordAccessDenied

from ..forms import BreakGlassForm

# Where break glass goes once granted: back to the page that refused, where that is the emergency view (a crew
# coming from the home page's NHS-number box); else the summary. Named, never a URL taken from the request.
BREAK_GLASS_RETURNS = {"record-emergency": "emergency"}


def then_of(request) -> str:
    match = getattr(request, "resolver_match", None)
    return BREAK_GLASS_RETURNS.get(match.url_name if match else "", "")


def forbidden(request, exception=None):
    """One page for 'not allowed' and 'no such patient': it says nothing about whether the patient exists."""
    context = {}
    if isinstance(exception, RecordAccessDenied):
        context["record_refused"] = True
        context["decision"] = exception.decision
        if exception.decision.can_break_glass and exception.patient_id:
            context["offer_break_glass"] = True
            context["patient_id"] = exception.patient_id
            context["break_glass_form"] = BreakGlassForm()
            context["break_glass_hours"] = settings.BREAK_GLASS_HOURS
            context["break_glass_then"] = then_of(request)
            # Said before the clinician confirms: emergency access will show only their own organisation's entries.
            context["objection_upheld"] = has_upheld_objection(exception.patient_id)
    return render(request, "403.html", context, status=403)
