"""The home page, the health check and the shared error pages."""

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.db import connection
from django.http import HttpResponse
from django.shortcuts import render

from sharing.access import RecordAccessDenied
from sharing.forms import BreakGlassForm


def home(request):
    return render(request, "home.html")


@login_not_required
def healthz(request):
    """For the load balancer: the process is up and the database answers."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return HttpResponse("ok", content_type="text/plain")


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
    return render(request, "403.html", context, status=403)
