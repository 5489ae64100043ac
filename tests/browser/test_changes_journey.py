"""A clinician looks at a record, something arrives, and at their next look the summary marks it "New" and the
"What changed" page lists it; "My patients" offers the record again under recent patients — accessibly (H-08)."""

import datetime
import re

import pytest
import time_machine
from django.conf import settings
from django.test import Client
from django.utils import timezone
from playwright.sync_api import expect

from tests import factories

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def sign_in_as(page, live_server, user):
    """The session of a signed-in user (password and code were the sign-in journeys' business), in the browser."""
    client = Client()
    client.force_login(user)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
    page.context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": cookie, "url": live_server.url}])


@pytest.mark.hazard("H-08")
def test_the_next_look_shows_what_arrived_since(
    live_server, page, clinician, patient, other_organisation, assert_accessible, csp_errors
):
    factories.ConditionFactory(patient=patient, source_organisation=other_organisation, name="Asthma")
    summary_url = f"{live_server.url}/patients/{patient.pk}/"
    monday = timezone.now() + datetime.timedelta(days=1)
    with time_machine.travel(monday, tick=True) as clock:
        sign_in_as(page, live_server, clinician)
        page.goto(summary_url)
        expect(page.get_by_text("This is your first look at this record")).to_be_visible()
        expect(page.locator(".app-changed-tag")).to_have_count(0)
        assert_accessible()

        clock.move_to(monday + datetime.timedelta(days=1))  # the next day: a discharge letter has arrived
        factories.LetterFactory(patient=patient, source_organisation=other_organisation, title="Discharge from ward 5")
        sign_in_as(page, live_server, clinician)  # yesterday's session has ended
        page.goto(summary_url)
        letters = page.locator("section[aria-labelledby=section-letters]")
        expect(letters.locator(".app-changed-tag")).to_have_text("New since you last looked")
        expect(page.locator(".app-changed-tag")).to_have_count(1)  # the condition was there last time
        assert_accessible()

        page.get_by_role("link", name="1 entry new or changed").click()
        expect(page.get_by_role("heading", level=1)).to_contain_text("What changed since you last looked")
        row = page.get_by_role("row", name=re.compile("Discharge from ward 5"))
        expect(row).to_contain_text("New")
        expect(row).to_contain_text("Letters and discharge information")
        expect(row).to_contain_text(other_organisation.name)
        expect(page.get_by_role("row", name=re.compile("Asthma"))).to_have_count(0)
        assert_accessible()

        page.get_by_role("link", name="My patients").first.click()
        recent = page.get_by_role("table", name=re.compile("Records you opened most recently"))
        expect(recent.get_by_role("link", name=patient.full_name)).to_be_visible()
        assert_accessible()
    assert csp_errors == []
