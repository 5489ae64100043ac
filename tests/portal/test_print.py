"""The printed record (portal.views.print): its own page, through the one access decision and audited as
"record:print:<part>", saying whose record it is, who printed it, when, and that it is not live (H-08)."""

import datetime
import re

import pytest
import time_machine
from django.urls import reverse

from audit.models import AccessEvent, AccessOutcome
from patients.categories import Category
from portal.views import print as record_print
from tests import factories

pytestmark = pytest.mark.django_db


def print_url(patient, page=None):
    url = reverse("record-print", args=[patient.pk])
    return f"{url}?page={page}" if page else url


def printed(client, user, patient, page=None):
    client.force_login(user)
    response = client.get(print_url(patient, page))
    assert response.status_code == 200
    return response


@pytest.mark.hazard("H-03")
def test_printing_is_its_own_audited_page_naming_what_was_printed(client, clinician, patient, full_record):
    response = printed(client, clinician, patient, "medications")
    (event,) = AccessEvent.objects.filter(request_id=response["X-Request-ID"])
    assert (event.outcome, event.page) == (AccessOutcome.ALLOWED, "record:print:medications")
    assert (event.user_id, event.patient_id, event.path) == (
        clinician.pk,
        patient.pk,
        print_url(patient, "medications"),
    )
    assert "Metformin" in response.content.decode()

    response = client.get(print_url(patient))
    (event,) = AccessEvent.objects.filter(request_id=response["X-Request-ID"])
    assert event.page == "record:print:summary"


@pytest.mark.hazard("H-03")
def test_printing_is_refused_as_the_record_is(client, outsider, patient, full_record):
    client.force_login(outsider)
    response = client.get(print_url(patient, "allergies"))
    assert response.status_code == 403
    (event,) = AccessEvent.objects.filter(request_id=response["X-Request-ID"])
    assert (event.outcome, event.page) == (AccessOutcome.REFUSED, "record:print:allergies")
    body = response.content.decode()
    assert patient.nhs_number_display not in body and "Penicillin" not in body


def test_a_part_that_does_not_exist_is_not_found_and_opens_nothing(client, clinician, patient):
    client.force_login(clinician)
    before = AccessEvent.objects.count()
    assert client.get(print_url(patient, "everything")).status_code == 404
    assert AccessEvent.objects.count() == before


@pytest.mark.hazard("H-08")
def test_the_print_says_who_printed_it_when_in_london_time_and_that_it_is_not_live(client, clinician, patient):
    professional = clinician.professional
    professional.job_title = "GP partner"
    professional.save()
    with time_machine.travel(datetime.datetime(2027, 7, 1, 11, 30, tzinfo=datetime.UTC), tick=False):
        body = printed(client, clinician, patient).content.decode()
    # 11:30 UTC is 12:30 in London in summer.
    when = '<time datetime="2027-07-01T12:30:00+01:00">1 July 2027 at 12:30</time> (UK time)'
    assert f"Printed on {when} by {professional.name}, GP partner, Riverside Medical Centre." in body
    assert "It is not live" in body and "This copy is not updated" in body
    # The running footer, on every printed page, says the same in brief.
    brief = (
        f'Printed <span class="app-nowrap">1 Jul 2027, 12:30</span> by {professional.name}, Riverside Medical Centre.'
    )
    assert f"{brief} Not live: the shared record as it was then." in body


def test_every_printed_page_repeats_the_patient_and_the_printer_in_the_layout_table(client, clinician, patient):
    body = printed(client, clinician, patient, "conditions").content.decode()
    head = body[body.index('<thead class="app-print__running-head">') : body.index("</thead>")]
    foot = body[body.index('<tfoot class="app-print__running-foot">') : body.index("</tfoot>")]
    assert patient.full_name in head and patient.nhs_number_display in head
    assert "Diagnosed conditions" in head
    assert "Not live" in foot
    assert '<table class="app-print" role="presentation">' in body


def test_a_category_prints_beyond_its_first_page_and_says_when_it_is_cut(
    client, clinician, patient, other_organisation, settings, monkeypatch
):
    settings.RECORD_PAGE_SIZE = 2
    for day in range(1, 6):
        factories.MedicationFactory(
            patient=patient,
            source_organisation=other_organisation,
            name=f"Medicine {day}",
            effective_at=datetime.datetime(2026, 1, day, tzinfo=datetime.UTC),
        )
    body = printed(client, clinician, patient, "medications").content.decode()
    assert all(f"Medicine {day}" in body for day in range(1, 6))
    assert "All 5, newest first." in body

    monkeypatch.setattr(record_print, "PRINT_MAX_ENTRIES", 3)
    body = client.get(print_url(patient, "medications")).content.decode()
    assert [f"Medicine {day}" in body for day in range(1, 6)] == [False, False, True, True, True]
    assert "The newest 3 of 5: the others are not in this copy." in body


def test_a_printed_letter_is_open_and_the_page_has_no_record_navigation(client, clinician, patient, full_record):
    body = printed(client, clinician, patient, "letters").content.decode()
    assert '<details class="nhsuk-details app-entry__details" open>' in body
    assert 'aria-label="Patient record"' not in body  # the record's navigation is not on the print page
    # On screen, the record's own letters page keeps its letters folded.
    on_screen = client.get(reverse("record-letters", args=[patient.pk])).content.decode()
    assert '<details class="nhsuk-details app-entry__details">' in on_screen


@pytest.mark.parametrize(
    ("page", "printed_part"),
    [("record-summary", None), ("record-medications", "medications"), ("record-results", "results")],
)
def test_every_record_page_links_to_its_own_print(client, clinician, patient, page, printed_part):
    client.force_login(clinician)
    body = client.get(reverse(page, args=[patient.pk])).content.decode()
    link = re.search(r'<p class="nhsuk-body-s app-print-link"><a href="([^"]+)">([^<]+)</a>', body)
    assert link.groups() == (print_url(patient, printed_part).replace("&", "&amp;"), "Print or save as PDF")


def test_pages_that_are_not_a_part_print_the_summary_and_say_so(client, clinician, patient):
    client.force_login(clinician)
    body = client.get(reverse("record-coverage", args=[patient.pk])).content.decode()
    assert f'<a href="{print_url(patient)}">Print the summary or save it as PDF</a>' in body


@pytest.mark.parametrize("category", [c.value for c in Category])
def test_every_category_prints(client, clinician, patient, full_record, category):
    body = printed(client, clinician, patient, category).content.decode()
    assert f"<title>Print: {Category(category).label} – Patient record" in body
    assert patient.nhs_number_display in body


def test_the_print_of_the_summary_is_as_quick_as_the_summary(
    client, clinician, patient, full_record, django_assert_max_num_queries
):
    client.force_login(clinician)
    client.get(reverse("record-summary", args=[patient.pk]))  # sessions and the like, once
    with django_assert_max_num_queries(40) as summary_queries:
        client.get(reverse("record-summary", args=[patient.pk]))
    with django_assert_max_num_queries(len(summary_queries)):
        client.get(print_url(patient))
