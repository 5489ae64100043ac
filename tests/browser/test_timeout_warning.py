"""The warning before the idle sign-out: two minutes before it, a dialog with the focus in it; "Stay signed in"
(or Escape) renews the session and closes it; left alone, the page signs out rather than go on showing the
record. The browser's clock is Playwright's, so fifteen minutes pass at once."""

import re

import pytest
from django.conf import settings
from django.contrib.sessions.models import Session
from django.test import Client
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

FOCUS_IN_DIALOG = "document.activeElement && document.activeElement.closest('dialog[open]') !== null"


def sign_in_as(page, live_server, user):
    """The session of a signed-in user, in the browser; its key, to read its expiry."""
    client = Client()
    client.force_login(user)
    key = client.cookies[settings.SESSION_COOKIE_NAME].value
    page.context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": key, "url": live_server.url}])
    return key


def expiry(key):
    return Session.objects.get(session_key=key).expire_date


@pytest.fixture
def record_page(live_server, page, clinician, patient, full_record):
    page.clock.install()
    key = sign_in_as(page, live_server, clinician)
    page.goto(f"{live_server.url}/patients/{patient.pk}/medications/")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Medications")
    return key


@pytest.mark.hazard("H-11")
def test_the_warning_comes_two_minutes_before_and_stay_signed_in_renews_the_session(
    page, record_page, assert_accessible, csp_errors
):
    dialog = page.get_by_role("dialog", name="You will be signed out soon")
    page.clock.fast_forward("12:50")
    expect(dialog).to_be_hidden()

    page.clock.fast_forward("00:15")  # 13 minutes and 5 seconds idle: under two minutes left
    expect(dialog).to_be_visible()
    assert page.evaluate(FOCUS_IN_DIALOG)
    expect(dialog).to_contain_text(re.compile(r"signed out in 1 minute 5\d seconds"))
    expect(dialog.locator("[aria-live]")).to_have_text(
        re.compile(r'^You will be signed out in 1 minute 5\d seconds\. Select "Stay signed in" to carry on\.$')
    )
    page.clock.fast_forward("01:00")  # announced again as it passes a minute, not every second
    expect(dialog.locator("[aria-live]")).to_have_text(
        'You will be signed out in 1 minute. Select "Stay signed in" to carry on.'
    )
    assert_accessible()

    before = expiry(record_page)
    dialog.get_by_role("button", name="Stay signed in").click()
    expect(dialog).to_be_hidden()
    assert expiry(record_page) > before
    # A whole idle period again: no warning for another thirteen minutes.
    page.clock.fast_forward("12:00")
    expect(dialog).to_be_hidden()
    assert csp_errors == []


@pytest.mark.hazard("H-11")
def test_escape_counts_as_stay_signed_in(page, record_page):
    dialog = page.get_by_role("dialog", name="You will be signed out soon")
    page.clock.fast_forward("13:30")
    expect(dialog).to_be_visible()
    before = expiry(record_page)
    with page.expect_response(re.compile(r"/accounts/stay-signed-in/$")) as renewal:
        page.keyboard.press("Escape")
    assert renewal.value.status == 204
    expect(dialog).to_be_hidden()
    assert expiry(record_page) > before


@pytest.mark.hazard("H-11")
def test_left_alone_the_page_signs_out(live_server, page, record_page, patient):
    dialog = page.get_by_role("dialog", name="You will be signed out soon")
    page.clock.fast_forward("13:30")
    expect(dialog).to_be_visible()
    page.clock.fast_forward("01:31")
    expect(page).to_have_url(re.compile(r"/accounts/login/"))
    assert not Session.objects.filter(session_key=record_page).exists()
    assert patient.nhs_number_display not in page.content()


def test_without_javascript_there_is_no_warning_and_nothing_breaks(live_server, browser, clinician, patient):
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    sign_in_as(page, live_server, clinician)
    page.goto(f"{live_server.url}/patients/{patient.pk}/")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Summary")
    expect(page.locator("dialog[open]")).to_have_count(0)
    context.close()
