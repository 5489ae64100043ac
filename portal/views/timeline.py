"""The timeline page: every category's entries, newest first, filtered by a GET form (the URL is its state).

One access decision and one audit event, as every record page (`get_patient_for`); the queries are
sharing.timeline's. htmx only swaps the list (the view returns `_timeline_list.html` on its own swaps)."""

from django.conf import settings
from django.core.paginator import Paginator
from django.shortcuts import render

from sharing import timeline as timeline_entries
from sharing.access import get_patient_for

from ..filters import TimelineFilterForm
from .record import _record_context


def timeline(request, patient_id):
    patient, decision = get_patient_for(request, patient_id, page="record:timeline")
    form = TimelineFilterForm(request.GET, organisations=timeline_entries.organisations(patient, decision))
    filters = form.filters() if form.is_valid() else None
    keys = timeline_entries.keys(patient, decision, filters) if filters else []
    page = Paginator(keys, settings.RECORD_PAGE_SIZE).get_page(request.GET.get("page"))
    context = _record_context(
        patient,
        decision,
        form=form,
        filters=filters,
        page=page,
        groups=timeline_entries.groups(timeline_entries.rows(page.object_list, patient, decision)),
    )
    fragment = request.htmx and not request.htmx.boosted and not request.htmx.history_restore_request
    template = "patients/record/_timeline_list.html" if fragment else "patients/record/timeline.html"
    return render(request, template, context)
