"""Record pages at a clinician's screen width and on a phone: the content takes the width there is, short
organisation names give their full name on keyboard focus, and at 375 px nothing scrolls sideways."""

import datetime

import pytest
from playwright.sync_api import expect

from tests import factories
from tests.browser.test_print_journey import sign_in_as

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

FULL = "St Elsewhere NHS Foundation Trust"
PAGES = ["", "medications/", "results/", "appointments/", "letters/", "teams/", "print/"]


@pytest.fixture
def record(patient, other_organisation, full_record):
    other_organisation.short_name = "St Elsewhere"
    other_organisation.save()
    for day in range(1, 8):
        factories.AppointmentFactory(
            patient=patient,
            source_organisation=other_organisation,
            location=FULL if day % 2 else "Outpatients department, Wing B, second floor",
            clinician="Dr Ngozi Adeyemi-Hutchinson",
            description="Review of diabetes, blood pressure and kidney function after the change of medicines",
            effective_at=datetime.datetime(2026, 2, day, 9, 30, tzinfo=datetime.UTC),
        )
    return patient


def content_width(page):
    return page.locator(".app-record-content").bounding_box()["width"]


def test_the_record_uses_the_width_of_the_screen(live_server, page, clinician, record):
    sign_in_as(page, live_server, clinician)
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{live_server.url}/patients/{record.pk}/appointments/")
    assert content_width(page) > 860  # three quarters of NHS.UK's 960 px column would be 720
    page.set_viewport_size({"width": 1920, "height": 1000})
    assert content_width(page) > 1400


def test_a_short_name_shows_the_full_name_on_keyboard_focus(live_server, page, clinician, record, assert_accessible):
    sign_in_as(page, live_server, clinician)
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{live_server.url}/patients/{record.pk}/appointments/")
    short = page.locator("td abbr.app-org__short").first
    full = page.locator("td .app-org__full").first
    expect(short).to_have_text("St Elsewhere")
    expect(short).to_have_attribute("title", FULL)
    expect(full).to_be_hidden()
    # Reached by the keyboard: from the focusable element before it, Tab lands on it.
    short.focus()
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.classList.contains('app-org__short')")
    expect(full).to_be_visible()
    expect(full).to_have_text(FULL)
    assert_accessible()
    page.keyboard.press("Tab")
    expect(full).to_be_hidden()


@pytest.mark.parametrize("path", PAGES)
def test_at_375_px_nothing_scrolls_sideways(live_server, page, clinician, record, path):
    sign_in_as(page, live_server, clinician)
    page.set_viewport_size({"width": 375, "height": 800})
    page.goto(f"{live_server.url}/patients/{record.pk}/{path}")
    widths = page.evaluate("[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    assert widths[0] <= widths[1], widths
