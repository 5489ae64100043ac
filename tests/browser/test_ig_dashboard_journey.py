"""An IG officer starts the day on the dashboard: what needs action, the chart of accesses and break glass per
organisation, then follows the break-glass tile to its queue, which opens on what still needs review. axe
(WCAG 2.2 AA) clean on both pages (H-12)."""

import datetime

import pytest
from django.core.cache import cache
from django.utils import timezone
from playwright.sync_api import expect

from audit.models import AccessBasis, AccessEvent, AccessOutcome
from sharing.models import BreakGlass
from tests import factories
from tests.browser.test_optout_journey import ig_officer_account  # noqa: F401 (a fixture)
from tests.browser.test_print_journey import sign_in_as

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def grant(patient, user, outcome, days_ago):
    started = timezone.now() - datetime.timedelta(days=days_ago)
    return factories.break_glass(patient=patient, user=user, outcome=outcome, started_at=started)


@pytest.mark.hazard("H-12")
def test_ig_follow_the_dashboard_to_the_break_glass_queue(
    live_server,
    page,
    patient,
    clinician,
    ig_officer_account,  # noqa: F811
    assert_accessible,
    csp_errors,
):
    cache.clear()
    factories.OrganisationFactory(ods_code="RBA", name="Test Acute Trust")
    for days in (1, 8, 15):
        AccessEvent.objects.create(
            at=timezone.now() - datetime.timedelta(days=days),
            organisation_code="RBA",
            outcome=AccessOutcome.ALLOWED,
            basis=AccessBasis.CARE_TEAM,
            page="record:summary",
        )
    waiting = grant(patient, clinician, BreakGlass.Outcome.PENDING, 1)
    grant(patient, clinician, BreakGlass.Outcome.APPROPRIATE, 3)

    sign_in_as(page, live_server, ig_officer_account)
    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto(f"{live_server.url}/admin/")
    expect(page.get_by_role("heading", name="Needs action")).to_be_visible()
    tile = page.locator(".app-tile", has_text="Emergency access (break glass)")
    expect(tile.locator(".app-tile__number")).to_have_text("1")
    expect(page.get_by_role("img", name="Test Acute Trust (RBA)")).to_be_visible()
    page.get_by_text("Show the figures as a table").click()
    expect(page.locator(".app-chart__figures table")).to_contain_text("Test Acute Trust (RBA)")
    assert csp_errors == []
    assert_accessible()

    tile.get_by_role("link").first.click()
    expect(page.locator("#result_list tbody tr")).to_have_count(1)
    expect(page.locator("#result_list")).to_contain_text(waiting.professional_name)
    expect(page.locator("#changelist-filter .selected").first).to_contain_text("Needing action")
    csp_errors.clear()
    assert_accessible()
