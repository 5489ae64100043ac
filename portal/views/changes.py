"""What changed since the professional last looked at this record: its own page, through the one access decision."""

from django.conf import settings
from django.core.paginator import Paginator
from django.shortcuts import render

from sharing import changes as changes_since
from sharing.access import get_patient_for

from .record import _record_context


def changes(request, patient_id):
    """The entries new or updated since the viewer's last look, newest arrival first, a page at a time. Opening
    it is a look like any record page (page "record:changes"), in the same visit as the summary that links here,
    so it lists what the summary marked."""
    patient, decision = get_patient_for(request, patient_id, page="record:changes")
    changes = changes_since.since_last_look(request.user, patient, decision)
    page = Paginator(changes.newest_first(), settings.RECORD_PAGE_SIZE).get_page(request.GET.get("page"))
    context = _record_context(
        patient,
        decision,
        changes=changes,
        page=page,
        changed=changes_since.changed_entries(patient, decision, page.object_list),
        idle_minutes=settings.SESSION_IDLE_MINUTES,
    )
    return render(request, "patients/record/changes.html", context)
