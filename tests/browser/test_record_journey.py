"""A clinician signs in, finds a patient, opens the record and follows a result trend — accessibly."""

import datetime
import re
from decimal import Decimal

import pytest
from playwright.sync_api import expect

from tests import factories

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def record_with_trend(patient, other_organisation):
    for year in range(2019, 2025):
        result = factories.ResultFactory(
            patient=patient,
            source_organisation=other_organisation,
            name="HbA1c",
            effective_at=datetime.datetime(year, 5, 1, 10, tzinfo=datetime.UTC),
        )
        factories.ObservationFactory(result=result, value=Decimal(38 + (year - 2019) * 2))
    factories.LetterFactory(patient=patient, source_organisation=other_organisation, title="Discharge from ward 5")
    return patient


@pytest.mark.hazard("H-08")
def test_sign_in_search_open_record_and_see_a_trend(
    live_server, page, clinician, record_with_trend, assert_accessible, csp_errors
):
    patient = record_with_trend
    page.goto(f"{live_server.url}/patients/")
    expect(page).to_have_url(re.compile(r"/accounts/login/"))
    assert_accessible()
    page.get_by_label("Email").fill(clinician.email)
    page.get_by_label("Password").fill(factories.PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    # Second factor: the code from the authenticator app.
    page.get_by_label(re.compile("code", re.I)).first.fill(factories.totp_code())
    assert_accessible()
    page.get_by_role("button", name=re.compile("sign in|continue|verify|submit", re.I)).first.click()

    page.goto(f"{live_server.url}/patients/search/")
    assert_accessible()
    page.get_by_role("textbox", name="NHS number").fill(patient.nhs_number_display)
    page.get_by_role("button", name=re.compile("Search", re.I)).first.click()
    expect(page.get_by_role("link", name=re.compile(patient.given_name))).to_be_visible()
    assert_accessible()

    page.get_by_role("link", name=re.compile(patient.given_name)).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(patient.given_name)
    expect(page.get_by_text("not live", exact=False).first).to_be_visible()
    assert_accessible()

    page.get_by_role("link", name=re.compile("^Blood tests and results")).first.click()
    assert_accessible()
    page.get_by_role("link", name=re.compile("trend", re.I)).first.click()
    expect(page.locator("svg[role=img] polyline")).to_have_count(1)
    expect(page.locator("table tbody tr")).to_have_count(6)
    assert_accessible()
    assert csp_errors == []
