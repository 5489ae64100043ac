"""Search and the professional's own patient list: demographics only, for any active professional."""

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.shortcuts import render
from django.views.decorators.http import require_http_methods

from audit.models import AccessBasis
from audit.writers import record_search, record_shown
from directory.profiles import professional_for
from patients import crew_search
from patients import search as patient_search
from patients.forms import NhsNumberSearchForm
from portal.forms import NameAndAgeSearchForm
from sharing.access import can_search, patients_in_care_of
from sharing.changes import recent_patients


@require_http_methods(["GET", "POST"])
def search(request):
    """POST, so that NHS numbers and names never end up in URLs, browser history or access logs."""
    if not can_search(request.user):
        raise PermissionDenied("Only an active professional can search for patients.")
    nhs_form, name_form, results, searched_by = NhsNumberSearchForm(), NameAndAgeSearchForm(), None, None
    more = False
    if request.method == "POST":
        searched_by = request.POST.get("by")
        if searched_by == "name":
            name_form = NameAndAgeSearchForm(request.POST)
            if name_form.is_valid():
                # Ranked and capped (SEARCH_MAX_RESULTS); only the patients shown are audited below.
                found = crew_search.find(**name_form.search_terms())
                results, more = found.patients, found.more
        else:
            searched_by = "nhs"
            nhs_form = NhsNumberSearchForm(request.POST)
            if nhs_form.is_valid():
                results = list(patient_search.by_nhs_number(nhs_form.cleaned_data["nhs_number"]))
        if results is not None:
            record_search(
                request=request, professional=professional_for(request.user), by=searched_by, patients=results
            )
    context = {
        "nhs_form": nhs_form,
        "name_form": name_form,
        "results": results,
        "searched_by": searched_by,
        "truncated": more,
    }
    status = 400 if searched_by and results is None else 200
    return render(request, "patients/search.html", context, status=status)


def my_patients(request):
    """Patients the professional's care teams are currently involved with.

    The list shows their demographics, so it is audited as a list, like a search: one AccessEvent per patient
    on the page shown (page "my-patients", basis care-team), none for an empty page. One row per page view
    naming nobody would leave each patient unable to learn from "who has seen my record" that they were shown.

    Page 1 also lists the records the professional opened most recently (`recent_patients`): only those they
    could open now, so the list is never a way round an ended relationship or expired break glass. Each shown
    there and not already in the page's list gets its own row (page "my-patients:recent", with the basis they
    may open it on), so every patient on the page is logged once."""
    if not can_search(request.user):
        raise PermissionDenied("Only an active professional has a patient list.")
    patients = patients_in_care_of(request.user).select_related("registered_gp").order_by("family_name", "given_name")
    page = Paginator(patients, settings.RECORD_PAGE_SIZE).get_page(request.GET.get("page"))
    page.object_list = list(page.object_list)  # evaluated once: what is logged is what the template shows
    record_shown(
        request=request,
        professional=professional_for(request.user),
        patients=page.object_list,
        page="my-patients",
        basis=AccessBasis.CARE_TEAM,
    )
    recent = recent_patients(request.user) if page.number == 1 else []
    listed = {patient.pk for patient in page.object_list}
    for basis in (AccessBasis.CARE_TEAM, AccessBasis.BREAK_GLASS):
        record_shown(
            request=request,
            professional=professional_for(request.user),
            patients=[patient for patient in recent if patient.basis == basis and patient.pk not in listed],
            page="my-patients:recent",
            basis=basis,
        )
    return render(request, "patients/my_patients.html", {"page": page, "recent": recent})
