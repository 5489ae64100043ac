"""A clinician prints the record (or saves it as a PDF): every page of the paper names the patient, and the copy
says who printed it, when and that it is not live; no URLs, no navigation (H-08)."""

import datetime
import io
import re

import pytest
from django.conf import settings
from django.test import Client
from playwright.sync_api import expect
from pypdf import PdfReader

from audit.models import AccessEvent
from tests import factories

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def sign_in_as(page, live_server, user):
    """The session of a signed-in user (password and code were the sign-in journeys' business), in the browser."""
    client = Client()
    client.force_login(user)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
    page.context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": cookie, "url": live_server.url}])


@pytest.fixture
def long_record(patient, other_organisation):
    """Enough current medications (the summary lists every one) to run over several printed pages."""
    for number in range(1, 61):
        factories.MedicationFactory(
            patient=patient,
            source_organisation=other_organisation,
            name=f"Medicine number {number} 10mg tablets",
            effective_at=datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC) + datetime.timedelta(days=number),
        )
    factories.AllergyFactory(patient=patient, source_organisation=other_organisation)
    factories.LetterFactory(patient=patient, source_organisation=other_organisation, title="Discharge from ward 5")
    return patient


def pdf_pages(page):
    return [p.extract_text() for p in PdfReader(io.BytesIO(page.pdf(format="A4"))).pages]


@pytest.mark.hazard("H-08")
def test_the_printed_record_names_the_patient_and_the_printer_on_every_page(
    live_server, page, clinician, long_record, assert_accessible, csp_errors
):
    patient = long_record
    professional = clinician.professional
    sign_in_as(page, live_server, clinician)
    page.goto(f"{live_server.url}/patients/{patient.pk}/")
    page.get_by_role("link", name="Print or save as PDF").click()
    expect(page).to_have_url(f"{live_server.url}/patients/{patient.pk}/print/")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Summary")
    # With JavaScript, a button opens the browser's print dialog; without, the browser's own command does.
    expect(page.get_by_role("button", name="Print or save as PDF")).to_be_visible()
    assert_accessible()
    assert AccessEvent.objects.filter(user_id=clinician.pk, page="record:print:summary").count() == 1

    pages = pdf_pages(page)
    assert len(pages) >= 3
    for number, text in enumerate(pages, start=1):
        flat = " ".join(text.split())
        assert patient.full_name in flat, f"page {number}"
        assert patient.nhs_number_display in flat, f"page {number}"
        assert "Not live" in flat, f"page {number}"
        assert f"by {professional.name}" in flat, f"page {number}"
    document = " ".join(" ".join(pages).split())
    assert re.search(
        rf"Printed on \d{{1,2}} \w+ \d{{4}} at \d\d:\d\d \(UK time\) by {re.escape(professional.name)}", document
    )
    assert "It is not live" in document and "This copy is not updated" in document
    assert "Medicine number 1 10mg" in document and "Medicine number 60 10mg" in document
    # No URLs after links, and none of the screen's chrome.
    assert "http" not in document and "/patients/" not in document and "(Link:" not in document
    for chrome in ("Skip to main content", "Find a patient", "My patients", "Sign out", "Back to the record"):
        assert chrome not in document, chrome
    assert csp_errors == []


@pytest.mark.hazard("H-08")
def test_a_category_prints_as_paper_with_its_letters_open(live_server, page, clinician, long_record, assert_accessible):
    patient = long_record
    sign_in_as(page, live_server, clinician)
    page.goto(f"{live_server.url}/patients/{patient.pk}/letters/")
    page.get_by_role("link", name="Print or save as PDF").click()
    expect(page).to_have_url(f"{live_server.url}/patients/{patient.pk}/print/?page=letters")
    assert_accessible()
    page.emulate_media(media="print")
    # On paper: the letter is there to read, the record's navigation and the page's header are not.
    expect(page.locator(".app-letter").first).to_be_visible()
    expect(page.locator(".nhsuk-header")).to_be_hidden()
    expect(page.locator(".app-print-controls")).to_be_hidden()
    expect(page.locator(".app-print__running-head")).to_be_visible()
    # Links keep their text and lose their URLs.
    after = page.evaluate("getComputedStyle(document.querySelector('.app-print a[href]'), '::after').content")
    assert after == "none"
    pages = pdf_pages(page)
    assert all(patient.nhs_number_display in text for text in pages)
    assert "Discharge from ward 5" in " ".join(pages)
    assert AccessEvent.objects.filter(user_id=clinician.pk, page="record:print:letters").count() == 1


def test_without_javascript_the_print_page_is_still_the_paper(live_server, browser, clinician, long_record):
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    sign_in_as(page, live_server, clinician)
    page.goto(f"{live_server.url}/patients/{long_record.pk}/print/?page=medications")
    expect(page.get_by_role("button", name="Print or save as PDF")).to_be_hidden()
    expect(page.get_by_text("Use your browser's print command")).to_be_visible()
    pages = pdf_pages(page)
    assert len(pages) >= 2 and all(long_record.nhs_number_display in text for text in pages)
    context.close()
