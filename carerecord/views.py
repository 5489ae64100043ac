"""The home page (the public landing page signed out, the professional's home signed in), the health check, and
"Stay signed in"."""

import time

from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from audit.writers import record_search
from directory.profiles import professional_for
from patients import search as patient_search
from patients.forms import NhsNumberSearchForm
from sharing.access import can_search

from .middleware import SESSION_RENEWED_AT


@login_not_required
@require_http_methods(["GET", "POST"])
def home(request):
    """Signed out, `/` is the public landing page: patients find what the record is, its partners and how to
    object there, and professionals the way to sign in. Its POST (the NHS number box) is a professional's only:
    signed out, it is sent to sign in, and nothing is searched.

    Signed in, the home page's NHS number box goes straight to the patient's emergency view: type the number.

    It is the search by NHS number (portal.views.search) with a shortcut: the same rules (any active
    professional; POSTed, so the number stays out of URLs and history), the same audit row ("search:nhs"), the
    same answer when no patient has the number. Opening the view is then the access decision's, as from the
    search's results: a professional with no care relationship is refused there, and offered break glass."""
    if not request.user.is_authenticated:
        if request.method == "POST":
            return redirect_to_login(request.get_full_path())
        return render(request, "public/landing.html")
    nhs_form, not_found = NhsNumberSearchForm(), False
    if request.method == "POST":
        if not can_search(request.user):
            raise PermissionDenied("Only an active professional can search for patients.")
        nhs_form = NhsNumberSearchForm(request.POST)
        if nhs_form.is_valid():
            found = list(patient_search.by_nhs_number(nhs_form.cleaned_data["nhs_number"]))
            record_search(request=request, professional=professional_for(request.user), by="nhs", patients=found)
            if len(found) == 1:
                return redirect("record-emergency", patient_id=found[0].pk)
            not_found = True
    status = 400 if nhs_form.errors else 200
    return render(request, "home.html", {"nhs_form": nhs_form, "not_found": not_found}, status=status)


@login_not_required
def healthz(request):
    """For the load balancer: the process is up and the database answers."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return HttpResponse("ok", content_type="text/plain")


@require_POST
def stay_signed_in(request):
    """The timeout warning's "Stay signed in": renews the idle expiry now (the session is saved whatever
    SESSION_RENEW_SECONDS says), and answers 204. A POST with the CSRF token, so no other site can keep a
    forgotten session alive; no patient data, nothing audited beyond the request itself."""
    request.session[SESSION_RENEWED_AT] = time.time()
    return HttpResponse(status=204)
