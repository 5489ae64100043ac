"""A paramedic with no care relationship is refused a record, breaks the glass and reads it under a banner;
then an IG officer finds the emergency access in the admin review queue and records that it was appropriate.

Accessibility is checked on the clinician's pages (the refusal with its form, the record with the banner),
which are the service's own; Django's admin is IG's back office and is not held to the same templates.
"""

import re

import pytest
from playwright.sync_api import expect

from audit.models import AuditEvent
from directory.models import Organisation, Professional
from sharing.models import BreakGlass
from tests import factories

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def paramedic():
    """London Ambulance Service-style crew member: no care team anywhere, so every record needs break glass."""
    ambulance = factories.OrganisationFactory(name="Capital Ambulance Service", kind=Organisation.Kind.AMBULANCE)
    professional = factories.ProfessionalFactory(
        organisation=ambulance, role=Professional.Role.PARAMEDIC, job_title="Paramedic"
    )
    return professional.user


def sign_in(page, user):
    """Password, then the authenticator app's code (each user's code is used once: two users, two codes)."""
    expect(page).to_have_url(re.compile(r"/accounts/login/"))
    page.get_by_label("Email").fill(user.email)
    page.get_by_label("Password").fill(factories.PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_label(re.compile("code", re.I)).first.fill(factories.totp_code())
    page.get_by_role("button", name=re.compile("sign in|continue|verify|submit", re.I)).first.click()


@pytest.mark.hazard("H-12")
def test_paramedic_breaks_glass_and_ig_reviews_it(
    live_server, page, new_context, paramedic, ig_user, patient, full_record, assert_accessible, csp_errors
):
    record_url = f"{live_server.url}/patients/{patient.pk}/"

    # The paramedic opens the record from a link (e.g. the crew's handover) and signs in on the way.
    page.goto(record_url)
    sign_in(page, paramedic)
    expect(page).to_have_url(record_url)
    expect(page.get_by_role("heading", level=1)).to_have_text("You cannot see this record")
    expect(page.get_by_role("heading", name="Emergency access")).to_be_visible()
    assert_accessible()

    page.get_by_label("Patient unable to consent").check()
    page.get_by_label("Give details").fill("Found collapsed at home, not responding")
    page.get_by_label(re.compile("I confirm I need this record")).check()
    page.get_by_role("button", name="Open the record in an emergency").click()

    expect(page).to_have_url(record_url)
    expect(page.get_by_role("heading", level=1)).to_contain_text(patient.given_name)
    banner = page.locator(".app-break-glass-banner")
    expect(banner).to_be_visible()
    expect(banner).to_contain_text("emergency access")
    expect(banner).to_contain_text("patient unable to consent")
    assert_accessible()
    assert csp_errors == []

    grant = BreakGlass.objects.get(user=paramedic, patient=patient)
    assert grant.review_outcome == BreakGlass.Outcome.PENDING

    # IG, in their own browser, works the review queue.
    ig_page = new_context().new_page()
    # The service's sign-in (password and authenticator code), then on to admin. Django's own /admin/login/
    # asks for a password only, so staff are sent here rather than there.
    ig_page.goto(f"{live_server.url}/accounts/login/?next=/admin/")
    sign_in(ig_page, ig_user)
    expect(ig_page).to_have_url(f"{live_server.url}/admin/")
    ig_page.get_by_role("link", name="Break glass reviews").first.click()
    row = ig_page.get_by_role("row").filter(has_text=grant.professional_name)
    expect(row).to_contain_text("Not yet reviewed")
    row.get_by_role("link").first.click()

    expect(ig_page.get_by_text("Found collapsed at home, not responding")).to_be_visible()
    ig_page.get_by_label("Review outcome").select_option(label="Appropriate")
    ig_page.get_by_label("Review note").fill("999 call confirmed; patient unconscious on arrival.")
    ig_page.get_by_role("button", name="Save", exact=True).click()
    expect(ig_page.get_by_text("was changed successfully")).to_be_visible()

    grant.refresh_from_db()
    assert grant.review_outcome == BreakGlass.Outcome.APPROPRIATE
    assert grant.reviewed_by == ig_user
    assert AuditEvent.objects.filter(action="break-glass.reviewed", actor_id=ig_user.pk).exists()
