"""A clinician on a phone scans the results, abnormal first, opens a trend that starts at the newest result, and
compares two tests on one chart — accessibly (issue 17)."""

import datetime
import re
from decimal import Decimal

import pytest
from playwright.sync_api import expect

from patients.units import UCUM
from tests import factories

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 375, "height": 812}


@pytest.fixture
def kidney_record(patient, other_organisation):
    """Seven years of renal profiles (creatinine rising, flagged high lately; eGFR falling below its range, never
    flagged) and a normal full blood count, newer than all of them."""
    for year in range(2019, 2026):
        report = factories.ResultFactory(
            patient=patient,
            source_organisation=other_organisation,
            name="Urea and electrolytes",
            effective_at=datetime.datetime(year, 4, 2, 9, tzinfo=datetime.UTC),
        )
        creatinine, egfr = 78 + (year - 2019) * 9, 95 - (year - 2019) * 8
        for code, name, value, unit, low, high, flag in (
            ("14682-9", "Creatinine", creatinine, "umol/L", 59, 104, "H" if creatinine > 104 else ""),
            ("62238-1", "eGFR", egfr, "mL/min/{1.73_m2}", 60, None, ""),
        ):
            factories.ObservationFactory(
                result=report,
                code=code,
                name=name,
                value=Decimal(value),
                unit=unit,
                unit_code=unit,
                unit_system=UCUM,
                reference_low=Decimal(low),
                reference_high=None if high is None else Decimal(high),
                flag=flag,
            )
    blood_count = factories.ResultFactory(
        patient=patient,
        source_organisation=other_organisation,
        name="Full blood count",
        effective_at=datetime.datetime(2026, 1, 5, 9, tzinfo=datetime.UTC),
    )
    factories.ObservationFactory(
        result=blood_count,
        code="6690-2",
        name="White cell count",
        value=Decimal("7.1"),
        unit="10*9/L",
        unit_code="10*9/L",
        unit_system=UCUM,
        reference_low=Decimal("4"),
        reference_high=Decimal("11"),
        flag="",
    )
    return patient


def sign_in(page, user):
    expect(page).to_have_url(re.compile(r"/accounts/login/"))
    page.get_by_label("Email").fill(user.email)
    page.get_by_label("Password").fill(factories.PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_label(re.compile("code", re.I)).first.fill(factories.totp_code())
    page.get_by_role("button", name=re.compile("sign in|continue|verify|submit", re.I)).first.click()


def in_view(page, locator, scroller):
    """Whether the element is drawn inside both the scroll box's visible part and the screen."""
    box, visible = locator.bounding_box(), scroller.bounding_box()
    width = page.viewport_size["width"]
    middle = box["x"] + box["width"] / 2
    return visible["x"] <= middle <= visible["x"] + visible["width"] and 0 <= middle <= width


@pytest.mark.hazard("H-08")
def test_on_a_phone_the_results_are_abnormal_first_and_the_trend_opens_at_the_newest_result(
    live_server, page, clinician, kidney_record, assert_accessible, csp_errors
):
    patient = kidney_record
    page.set_viewport_size(PHONE)
    page.goto(f"{live_server.url}/patients/{patient.pk}/results/")
    sign_in(page, clinician)
    expect(page).to_have_url(re.compile(rf"/patients/{patient.pk}/results/"))

    # The older renal profile, with its abnormal values, comes before the newer normal blood count.
    panels = page.locator(".app-results-panel__title")
    expect(panels).to_have_count(2)
    expect(panels.nth(0)).to_contain_text("Urea and electrolytes")
    expect(panels.nth(0)).to_contain_text("2 abnormal")
    expect(panels.nth(1)).to_contain_text("Full blood count")
    expect(page.locator("#section-tests").locator("..").get_by_text("7.1 ×10⁹/L")).to_be_visible()
    expect(page.get_by_text("Below range").first).to_be_visible()
    assert_accessible()

    page.get_by_role("link", name="See trend for Creatinine").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Creatinine")
    scroller = page.locator(".app-chart__scroll")
    points = scroller.locator(".app-chart__point")
    expect(points).to_have_count(7)
    # Wider than the phone, the chart opens at its right end: the newest result in view, the oldest off to the left.
    assert page.evaluate("() => document.querySelector('.app-chart__scroll').scrollWidth") > PHONE["width"]
    assert in_view(page, points.last, scroller)
    assert not in_view(page, points.first, scroller)
    expect(page.get_by_text("Scroll left for earlier results")).to_be_visible()
    assert_accessible()

    # Two tests on one chart: eGFR beside creatinine, each series with its own axis, marker and line.
    page.get_by_role("link", name="eGFR with Creatinine").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Creatinine and eGFR")
    scroller = page.locator(".app-chart__scroll")
    first, second = scroller.locator("g[data-series=first]"), scroller.locator("g[data-series=second]")
    expect(first).to_have_count(7)
    expect(second).to_have_count(7)
    assert in_view(page, first.last, scroller) and in_view(page, second.last, scroller)
    expect(page.get_by_text("Scroll left for earlier results")).to_be_visible()
    expect(page.get_by_text("squares, dashed line, right axis")).to_be_visible()
    expect(page.locator("table tbody tr")).to_have_count(14)
    assert_accessible()
    assert csp_errors == []


def test_on_a_wide_screen_the_whole_chart_shows_with_no_hint_to_scroll(
    live_server, page, clinician, kidney_record, assert_accessible
):
    patient = kidney_record
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{live_server.url}/patients/{patient.pk}/results/14682-9/?with=62238-1")
    sign_in(page, clinician)
    expect(page.get_by_role("heading", level=1)).to_contain_text("Creatinine and eGFR")
    scroller = page.locator(".app-chart__scroll")
    assert page.evaluate(
        "() => { const s = document.querySelector('.app-chart__scroll'); return s.scrollWidth <= s.clientWidth }"
    )
    first = scroller.locator("g[data-series=first]")
    assert in_view(page, first.first, scroller) and in_view(page, first.last, scroller)
    expect(page.get_by_text("Scroll left for earlier results")).to_be_hidden()
    # Laid out from the left as before: the chart starts at its box's left edge.
    svg, box = scroller.locator("svg").bounding_box(), scroller.bounding_box()
    assert abs(svg["x"] - box["x"]) < 1
    assert_accessible()
