"""A patient on a phone finds the public pages from `/` and asks to opt out for someone they care for: the
on-behalf details appear only under "Someone else", the region hints name boroughs, "Check your answers" comes
before anything is sent, and a "Change" link goes back to the form filled in. axe (WCAG 2.2 AA) clean and no
horizontal scrolling at 375 px on every page of the way."""

import re

import pytest
from django.core.cache import cache
from playwright.sync_api import expect

from optout.models import Objection

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 375, "height": 812}


@pytest.fixture(autouse=True)
def fresh_rate_limit():
    """The form's rate limit counts in the cache the live server shares with the tests."""
    cache.clear()
    yield
    cache.clear()


def assert_fits(page):
    """Nothing wider than the phone's screen: no scrolling sideways."""
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{page.url} is {width}px wide"


@pytest.mark.hazard("H-06")
def test_a_patient_finds_the_opt_out_from_the_landing_page_and_checks_their_answers(
    live_server, page, assert_accessible, csp_errors
):
    page.set_viewport_size(PHONE)
    page.goto(f"{live_server.url}/")
    expect(page.get_by_role("heading", level=1)).to_have_text("London Shared Care Record")
    expect(page.get_by_role("link", name="Sign in (health and care professionals)")).to_be_visible()
    assert_fits(page)
    assert_accessible()

    page.get_by_role("main").get_by_role("link", name="How to opt out").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("How to opt out")
    expect(page.get_by_text("Kingston upon Thames")).to_be_visible()  # which area is whose, by borough
    assert_fits(page)
    assert_accessible()
    page.get_by_role("link", name="Ask to opt out online").click()

    # The form: the on-behalf details only under "Someone else".
    expect(page.get_by_role("heading", level=1)).to_contain_text("Ask to opt out")
    name, relationship = page.get_by_label("Your full name"), page.get_by_label("Your relationship to them")
    expect(name).to_be_hidden()
    page.get_by_label("Myself").check()
    expect(name).to_be_hidden()
    expect(relationship).to_be_hidden()
    page.get_by_label("Someone else, on their behalf").check()
    expect(name).to_be_visible()
    expect(relationship).to_be_visible()
    expect(page.get_by_label("Someone else, on their behalf")).to_have_attribute("aria-expanded", "true")
    page.get_by_label("Myself").check()
    expect(name).to_be_hidden()
    assert_fits(page)
    assert_accessible()

    # Sent empty: the errors, accessible too.
    page.get_by_role("button", name="Continue").click()
    expect(page.locator(".nhsuk-error-summary")).to_be_visible()
    expect(page).to_have_title(re.compile("^Error:"))
    assert_fits(page)
    assert_accessible()

    page.get_by_label("Someone else, on their behalf").check()
    name.fill("Sam Reyes")
    relationship.fill("Son")
    page.get_by_label("Given name").fill("Nadia")
    page.get_by_label("Family name").fill("Okonkwo-Reyes")
    page.get_by_label("Day").fill("15")
    page.get_by_label("Month").fill("3")
    page.get_by_label("Year").fill("1984")
    page.get_by_label("Postcode").fill("se1 7eh")
    expect(page.get_by_text("Bexley, Bromley, Greenwich, Lambeth, Lewisham, Southwark")).to_be_visible()
    page.get_by_label("South East London").check()
    page.get_by_label("Email address").fill("sam@example.com")
    page.get_by_role("button", name="Continue").click()

    # Check your answers: nothing stored yet; one answer changed through its "Change" link.
    expect(page.get_by_role("heading", level=1)).to_have_text("Check your answers before sending your request")
    expect(page).to_have_url(f"{live_server.url}/opt-out/request/check/")
    answers = page.locator(".nhsuk-summary-list")
    expect(answers).to_contain_text("15 March 1984")
    expect(answers).to_contain_text("SE1 7EH")
    expect(answers).to_contain_text("Sam Reyes")
    assert not Objection.objects.exists()
    assert_fits(page)
    assert_accessible()

    page.get_by_role("link", name="Change postcode").click()
    expect(page.get_by_label("Postcode")).to_have_value("SE1 7EH")
    expect(page.get_by_label("Someone else, on their behalf")).to_be_checked()
    expect(name).to_have_value("Sam Reyes")  # the reveal open, with what was typed
    page.get_by_label("Postcode").fill("SE5 8AZ")
    page.get_by_role("button", name="Continue").click()
    expect(page.locator(".nhsuk-summary-list")).to_contain_text("SE5 8AZ")
    page.get_by_role("button", name="Send request").click()

    expect(page.get_by_role("heading", name="Request received")).to_be_visible()
    reference = page.locator(".nhsuk-panel__body strong").inner_text()
    assert_fits(page)
    assert_accessible()
    objection = Objection.objects.get()
    assert reference.startswith("OPT-")
    assert (objection.postcode, objection.on_behalf_name, objection.on_behalf_relationship) == (
        "SE58AZ",
        "Sam Reyes",
        "Son",
    )
    assert csp_errors == []


def test_without_javascript_the_on_behalf_details_show_under_their_option(live_server, browser):
    context = browser.new_context(java_script_enabled=False, viewport=PHONE)
    page = context.new_page()
    page.goto(f"{live_server.url}/opt-out/request/")
    expect(page.get_by_label("Your full name")).to_be_visible()
    expect(page.get_by_label("Your relationship to them")).to_be_visible()
    context.close()
