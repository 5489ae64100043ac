"""Public pages for patients (no sign-in): what the record is, how to object, and the objection form."""

import smtplib

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods
from django_ratelimit.core import is_ratelimited

from patients.categories import Category

from . import actions
from .forms import ObjectionRequestForm
from .models import RegionalProcess, new_reference

DONE_SESSION_KEY = "optout_reference"


@login_not_required
def information(request):
    return render(request, "optout/information.html", {"categories": list(Category)})


@login_not_required
def how_to_opt_out(request):
    return render(request, "optout/how_to_opt_out.html", {"processes": RegionalProcess.objects.all()})


def _optout_rate(group, request) -> str:
    return f"{settings.OPTOUT_REQUESTS_PER_HOUR}/h"


def _over_rate_limit(request) -> bool:
    """At most OPTOUT_REQUESTS_PER_HOUR submissions (valid or not) from one client address per hour, counted
    by django-ratelimit on the shared cache. "ip" is the client's address as settings.RATELIMIT_IP_META_KEY
    reads it (carerecord.client_address: X-Forwarded-For only behind the trusted proxy), the same as allauth's."""
    return is_ratelimited(request, group="optout-request", key="ip", rate=_optout_rate, method="POST", increment=True)


@login_not_required
@require_http_methods(["GET", "POST"])
def request_objection(request):
    form = ObjectionRequestForm(request.POST or None)
    if request.method == "POST":
        if _over_rate_limit(request):
            form.add_error(None, "Too many requests have been sent from this connection. Try again in an hour.")
            return render(request, "optout/request.html", {"form": form}, status=429)
        if form.is_valid():
            if form.is_bot:
                reference = new_reference()  # looks the same to a bot; nothing is stored
            else:
                try:
                    objection = actions.submit_objection(**form.objection_details())
                except (smtplib.SMTPException, OSError):
                    # The acknowledgement could not be sent, so nothing was stored: say so, keep what they typed.
                    form.add_error(None, "Sorry, we could not send your request just now. Please try again later.")
                    return render(request, "optout/request.html", {"form": form}, status=503)
                reference = objection.acknowledgement  # this request's own, new case or repeat alike
            request.session[DONE_SESSION_KEY] = reference
            return redirect("optout-request-done")
        return render(request, "optout/request.html", {"form": form}, status=400)
    return render(request, "optout/request.html", {"form": form})


@login_not_required
def request_done(request):
    """The same page whether or not the patient exists: a reference and what happens next."""
    reference = request.session.get(DONE_SESSION_KEY)
    if not reference:
        return redirect("optout-request")
    return render(request, "optout/request_done.html", {"reference": reference})
