"""A clinician opens a record's timeline, narrows it with its filters (a GET form: the URL keeps them), then filters
a category page — accessibly, with htmx only making it quicker."""

import datetime
import re

import pytest
from playwright.sync_api import expect

from patients.models import Medication
from tests import factories

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def at(year, month=6, day=1):
    return datetime.datetime(year, month, day, 10, tzinfo=datetime.UTC)


@pytest.fixture
def record(patient, organisation, other_organisation):
    other_organisation.short_name = "St Elsewhere"
    other_organisation.save()
    source = {"patient": patient, "source_organisation": other_organisation}
    factories.MedicationFactory(**source, name="Ramipril 5mg capsules", effective_at=at(2024))
    factories.MedicationFactory(
        **source, name="Amoxicillin 500mg capsules", status=Medication.Status.STOPPED, effective_at=at(2023)
    )
    factories.ConditionFactory(**source, name="Hypertension", effective_at=at(2022))
    factories.LetterFactory(**source, title="Cardiology clinic letter", effective_at=at(2021))
    factories.AllergyFactory(patient=patient, source_organisation=organisation, substance="Latex", effective_at=None)
    return patient


def sign_in(page, live_server, user):
    page.goto(f"{live_server.url}/patients/")
    page.get_by_label("Email").fill(user.email)
    page.get_by_label("Password").fill(factories.PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_label(re.compile("code", re.I)).first.fill(factories.totp_code())
    page.get_by_role("button", name=re.compile("sign in|continue|verify|submit", re.I)).first.click()
    expect(page).not_to_have_url(re.compile(r"/accounts/"))


def timeline_rows(page):
    return page.locator("#record-list tbody tr")


@pytest.mark.hazard("H-09")
def test_timeline_filters_then_a_category_page_filter(
    live_server, page, clinician, record, other_organisation, assert_accessible, csp_errors
):
    patient = record
    sign_in(page, live_server, clinician)
    page.goto(f"{live_server.url}/patients/{patient.pk}/")
    page.get_by_role("link", name="Timeline", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Timeline")
    expect(timeline_rows(page)).to_have_count(5)
    # Newest first; the allergy with no date last, under "Date not recorded", never given one.
    expect(timeline_rows(page).first).to_contain_text("Ramipril")
    expect(page.get_by_role("heading", name="Date not recorded")).to_be_visible()
    expect(timeline_rows(page).last).to_contain_text("Latex")
    expect(page.locator("abbr[title='St Elsewhere NHS Foundation Trust']").first).to_have_text("St Elsewhere")
    assert_accessible()

    filters = page.get_by_role("form", name="Filter the timeline")
    filters.get_by_label("Medications").check()
    filters.get_by_label("Source organisation").select_option(label=other_organisation.name)
    filters.get_by_role("button", name="Apply filters").click()
    expect(page).to_have_url(re.compile(r"category=medications"))
    expect(timeline_rows(page)).to_have_count(2)
    expect(page.locator("#record-list")).not_to_contain_text("Hypertension")
    assert_accessible()

    # The URL is the filters' state: opened afresh, the same list and the same ticks.
    page.reload()
    expect(timeline_rows(page)).to_have_count(2)
    expect(page.get_by_role("form", name="Filter the timeline").get_by_label("Medications")).to_be_checked()

    # A date range: only 2023 onwards; then a range the wrong way round is an error, linked to its field.
    filters = page.get_by_role("form", name="Filter the timeline")
    filters.get_by_label("Medications").uncheck()
    filters.get_by_label("From").fill("2023-01-01")
    filters.get_by_role("button", name="Apply filters").click()
    expect(timeline_rows(page)).to_have_count(2)
    expect(page.locator("#record-list")).to_contain_text("not shown when you filter by date")
    filters.get_by_label("To").fill("2022-01-01")
    filters.get_by_role("button", name="Apply filters").click()
    expect(page.get_by_text("There is a problem")).to_be_visible()
    expect(page.get_by_role("link", name=re.compile("'to' date must be the same as or after"))).to_be_visible()
    expect(timeline_rows(page)).to_have_count(0)
    assert_accessible()

    # A category page: medications, current only.
    page.get_by_role("navigation", name="Patient record").get_by_role("link", name="Medications").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Medications")
    page.get_by_text("Filter this list").click()
    list_filters = page.get_by_role("form", name="Filter this list")
    list_filters.get_by_label("Status").select_option(label="Current")
    assert_accessible()
    list_filters.get_by_role("button", name="Apply filters").click()
    expect(page).to_have_url(re.compile(r"status=current"))
    expect(page.locator("#record-list")).to_contain_text("Ramipril")
    expect(page.locator("#record-list")).not_to_contain_text("Amoxicillin")
    assert_accessible()
    assert csp_errors == []


def test_the_filters_work_without_javascript(live_server, browser, clinician, record, other_organisation):
    """The same form with JavaScript off: a plain GET, the whole page back, the list narrowed."""
    patient = record
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    sign_in(page, live_server, clinician)
    page.goto(f"{live_server.url}/patients/{patient.pk}/timeline/")
    expect(timeline_rows(page)).to_have_count(5)
    filters = page.get_by_role("form", name="Filter the timeline")
    filters.get_by_label("Diagnosed conditions").check()
    filters.get_by_label("Letters and discharge information").check()
    filters.get_by_role("button", name="Apply filters").click()
    expect(page).to_have_url(re.compile(r"category=conditions&category=letters"))
    expect(timeline_rows(page)).to_have_count(2)
    expect(page.locator("#record-list")).to_contain_text("Hypertension")
    page.goto(f"{live_server.url}/patients/{patient.pk}/letters/?q=CARDIOLOGY")
    expect(page.locator("#record-list")).to_contain_text("Cardiology clinic letter")
    page.goto(f"{live_server.url}/patients/{patient.pk}/letters/?q=orthopaedic")
    expect(page.locator("#record-list")).to_contain_text("No entries match these filters")
    context.close()
