"""A paramedic's journey on a phone: sign in, type the NHS number on the home page, and the emergency view opens
with allergies and medications on the first screen (issue 17: two actions from sign-in) — accessibly."""

import datetime
import re
import time

import pytest
from django.conf import settings
from django.core.cache import cache
from django.test import Client
from playwright.sync_api import expect

from tests import factories

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 375, "height": 667}


@pytest.fixture(autouse=True)
def _no_used_codes():
    """allauth remembers used codes in the cache by user id, and ids come round again once earlier tests' rows
    are rolled back: an earlier test's sign-in must not make this one's fresh code read as used."""
    cache.clear()


def totp_code():
    """Now's code, waiting out the last seconds of a 30-second window so it is still valid when it arrives."""
    if 30 - time.time() % 30 < 3:
        time.sleep(30 - time.time() % 30 + 0.5)
    return factories.totp_code()


def signed_in(page, live_server, user):
    """A signed-in session in the browser (the first journey signs in by password and code; this one need not)."""
    client = Client()
    client.force_login(user)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
    page.context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": cookie, "url": live_server.url}])


@pytest.fixture
def emergency_record(patient, other_organisation, clinician):
    # As IG set them up: a short name for the trust's source lines; the header names the crew member's role.
    other_organisation.short_name = "St Elsewhere FT"
    other_organisation.save()
    clinician.professional.job_title = "Paramedic"
    clinician.professional.save()
    source = {"patient": patient, "source_organisation": other_organisation}
    factories.AllergyFactory(**source, substance="Penicillin", reaction="Anaphylaxis", severity="severe")
    factories.AllergyFactory(**source, substance="Latex", reaction="Rash", severity="mild")
    for name in ("Apixaban 5 mg tablets", "Ramipril 5 mg capsules", "Metformin 500 mg tablets"):
        factories.MedicationFactory(**source, name=name)
    factories.AlertFactory(**source, kind="dnacpr", text="DNACPR decision in place; ReSPECT form at home")
    factories.ConditionFactory(**source, name="Atrial fibrillation")
    factories.CarePlanFactory(**source, title="ReSPECT plan", description="Not for CPR. For ward-based care.")
    factories.SupportPersonFactory(patient=patient, source_organisation=other_organisation, name="Bernard Testperson")
    factories.AppointmentFactory(
        **source,
        kind="attendance",
        status="completed",
        service="Emergency department",
        effective_at=datetime.datetime(2026, 1, 5, 22, 30, tzinfo=datetime.UTC),
    )
    return patient


def top_of(locator):
    box = locator.bounding_box()
    assert box is not None, locator
    return box["y"]


@pytest.mark.hazard("H-07")
def test_sign_in_type_the_nhs_number_and_see_allergies_and_medications_on_the_first_screen(
    live_server, page, clinician, emergency_record, assert_accessible, csp_errors
):
    patient = emergency_record
    page.set_viewport_size(PHONE)
    page.goto(f"{live_server.url}/")  # signed out, the public landing page: its way in for professionals
    page.get_by_role("link", name="Sign in (health and care professionals)").click()
    expect(page).to_have_url(re.compile(r"/accounts/login/"))
    page.get_by_label("Email").fill(clinician.email)
    page.get_by_label("Password").fill(factories.PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_label(re.compile("code", re.I)).first.fill(totp_code())
    page.get_by_role("button", name=re.compile("sign in|continue|verify|submit", re.I)).first.click()

    # Signed in: the home page, with the NHS number box.
    expect(page).to_have_url(f"{live_server.url}/")
    assert_accessible()
    # Action 1: type the number (with spaces, as on a card). Action 2: submit.
    page.get_by_role("textbox", name="NHS number").fill(patient.nhs_number_display)
    page.get_by_role("button", name="Open emergency view").click()

    expect(page).to_have_url(f"{live_server.url}/patients/{patient.pk}/emergency/")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Emergency view")
    allergies = page.locator("#emergency-allergies")
    medications = page.locator("#emergency-medications")
    expect(allergies).to_contain_text("Penicillin")
    expect(medications).to_contain_text("Apixaban 5 mg tablets")
    # Both start on the phone's first screen, without scrolling: the first allergy and medication in full view.
    assert page.evaluate("window.scrollY") == 0
    for section in (allergies, medications):
        first_name = section.locator("li strong").first
        box = first_name.bounding_box()
        assert box is not None and box["y"] + box["height"] <= PHONE["height"], (section, box)
    assert top_of(allergies) < top_of(medications)
    # The rest follows, in its order, each item with its source.
    order = [
        "#emergency-allergies",
        "#emergency-medications",
        "#emergency-alerts",
        "#emergency-conditions",
        "#emergency-plans",
        "#emergency-contacts",
        "#emergency-gp",
        "#emergency-attendances",
    ]
    tops = [top_of(page.locator(selector)) for selector in order]
    assert tops == sorted(tops)
    expect(page.locator("#emergency-plans")).to_contain_text("ReSPECT plan")
    expect(page.locator("#emergency-contacts")).to_contain_text("Bernard Testperson")
    expect(page.locator("#emergency-attendances")).to_contain_text("Emergency department")
    expect(allergies.locator(".app-source").first).to_contain_text("St Elsewhere NHS Foundation Trust")
    assert_accessible()
    assert csp_errors == []


def test_an_invalid_nhs_number_on_the_home_page_gets_a_field_error(live_server, page, clinician, assert_accessible):
    page.set_viewport_size(PHONE)
    signed_in(page, live_server, clinician)
    page.goto(f"{live_server.url}/")
    page.get_by_role("textbox", name="NHS number").fill("943 476 5918")
    page.get_by_role("button", name="Open emergency view").click()
    expect(page.locator(".nhsuk-error-summary")).to_contain_text("check digit")
    expect(page.locator("#id_nhs_number-error")).to_contain_text("check digit")
    assert_accessible()
