"""Public pages for patients (no sign-in): what the record is, how to object, and the objection request in three
steps: the form, "Check your answers" (the answers kept in the session, never in a URL), and the reference."""

import smtplib

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods
from django_ratelimit.core import is_ratelimited

from directory.regions import WHICH_AREA, areas
from patients.categories import Category

from . import actions, answers
from .forms import ObjectionRequestForm
from .models import RegionalProcess, new_reference

DONE_SESSION_KEY = "optout_reference"
SEND_FAILED = "Sorry, we could not send your request just now. Please try again later."


@login_not_required
def information(request):
    return render(
        request,
        "optout/information.html",
        {"categories": list(Category), "response_days": settings.OPTOUT_RESPONSE_DAYS},
    )


@login_not_required
def how_to_opt_out(request):
    """Each region's process (IG write it in admin), and which boroughs each region covers (directory.regions)."""
    return render(
        request,
        "optout/how_to_opt_out.html",
        {
            "processes": RegionalProcess.objects.all(),
            "areas": areas(),
            "which_area": WHICH_AREA,
            "response_days": settings.OPTOUT_RESPONSE_DAYS,
        },
    )


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
    """The form, step one of two. A valid POST keeps the answers in the session and goes on to "Check your
    answers": nothing is stored or sent yet. Opened again (a "Change" link there), it shows the kept answers.

    Every POST here (valid or not) counts towards the rate limit; the send can only follow a valid one, and uses
    its answers up, so sends are limited by the same count."""
    if request.method == "GET":
        return _form_page(request, ObjectionRequestForm(initial=answers.kept(request.session)))
    form = ObjectionRequestForm(request.POST)
    if _over_rate_limit(request):
        form.add_error(None, "Too many requests have been sent from this connection. Try again in an hour.")
        return _form_page(request, form, status=429)
    if not form.is_valid():
        return _form_page(request, form, status=400)
    answers.keep(request.session, form)
    return redirect("optout-request-check")


def _form_page(request, form, status=200):
    context = {"form": form, "response_days": settings.OPTOUT_RESPONSE_DAYS}
    return render(request, "optout/request.html", context, status=status)


@login_not_required
@require_http_methods(["GET", "POST"])
def check_answers(request):
    """Step two: the answers to confirm, each with a "Change" link back to the form; "Send request" submits them
    (optout.actions.submit_objection). Without kept answers, back to the form."""
    form = answers.kept_form(request.session)
    if form is None:
        return redirect("optout-request")
    context = {"rows": answers.summary(form)}
    if request.method == "GET":
        return render(request, "optout/request_check.html", context)
    if answers.from_a_bot(request.session):
        reference = new_reference()  # looks the same to a bot; nothing is stored
    else:
        try:
            objection = actions.submit_objection(**form.objection_details())
        except (smtplib.SMTPException, OSError):
            # The acknowledgement could not be sent, so nothing was stored: say so, keep the answers to try again.
            context["errors"] = [{"href": "#send-request", "text": SEND_FAILED}]
            return render(request, "optout/request_check.html", context, status=503)
        reference = objection.acknowledgement  # this request's own, new case or repeat alike
    answers.forget(request.session)
    request.session[DONE_SESSION_KEY] = reference
    return redirect("optout-request-done")


@login_not_required
def request_done(request):
    """The same page whether or not the patient exists: a reference and what happens next."""
    reference = request.session.get(DONE_SESSION_KEY)
    if not reference:
        return redirect("optout-request")
    return render(
        request, "optout/request_done.html", {"reference": reference, "response_days": settings.OPTOUT_RESPONSE_DAYS}
    )
