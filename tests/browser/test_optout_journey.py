"""A patient opts out on a phone, IG upholds it in admin, a clinician sees only their own organisation's entries
under the opted-out banner; IG records a withdrawal and the shared record comes back. Accessible throughout
(axe on the public form, its confirmation and the clinician's record; the admin is Django's own)."""

import re
import time

import pytest
from playwright.sync_api import expect

from audit.models import AuditEvent
from demo.accounts import information_governance_group
from optout.models import Objection
from tests import factories

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHARED_LETTER = "Discharge from the cardiology ward"
SHARED_CONDITION = "Heart failure with reduced ejection fraction"
OWN_ALERT = "Prefers appointments after 10am"
OPTED_OUT = "This patient has opted out of sharing"


@pytest.fixture
def shared_record(patient, organisation, other_organisation):
    """Entries from the hospital (another organisation than the clinician's practice), and one of the practice's."""
    factories.LetterFactory(patient=patient, source_organisation=other_organisation, title=SHARED_LETTER)
    factories.ConditionFactory(patient=patient, source_organisation=other_organisation, name=SHARED_CONDITION)
    factories.AlertFactory(patient=patient, source_organisation=organisation, text=OWN_ALERT)
    return patient


@pytest.fixture
def ig_officer_account():
    """Staff, not superuser: the IG group's permissions only, as the demo IG officer has."""
    user = factories.UserFactory(is_staff=True, email="ig.journey@test.carerecord.test")
    user.groups.add(information_governance_group())
    return user


def totp_code():
    """Today's code, waiting out the last seconds of a 30-second window so it is still valid when it arrives."""
    if 30 - time.time() % 30 < 3:
        time.sleep(30 - time.time() % 30 + 0.5)
    return factories.totp_code()


def sign_in(page, url, user):
    page.goto(url)
    expect(page).to_have_url(re.compile(r"/accounts/login/"))
    page.get_by_label("Email").fill(user.email)
    page.get_by_label("Password").fill(factories.PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_label(re.compile("code", re.I)).first.fill(totp_code())
    page.get_by_role("button", name=re.compile("sign in|continue|verify|submit", re.I)).first.click()


def admin_step(page, button, message):
    page.get_by_role("button", name=button).click()
    expect(page.locator(".messagelist .success")).to_contain_text(message)


def test_opt_out_uphold_and_withdraw(
    live_server, browser, page, shared_record, clinician, ig_officer_account, assert_accessible, csp_errors
):
    patient = shared_record
    dob = patient.date_of_birth

    # The patient, on a phone: a first attempt with nothing filled in, then the real request.
    page.set_viewport_size({"width": 375, "height": 812})
    page.goto(f"{live_server.url}/opt-out/request/")
    assert_accessible()
    page.get_by_role("button", name="Continue").click()
    expect(page.locator(".nhsuk-error-summary")).to_be_visible()
    expect(page).to_have_title(re.compile("^Error:"))
    assert_accessible()

    page.get_by_label("Myself").check()
    page.get_by_label("Given name").fill(patient.given_name)
    page.get_by_label("Family name").fill(patient.family_name)
    page.get_by_label("Day").fill(str(dob.day))
    page.get_by_label("Month").fill(str(dob.month))
    page.get_by_label("Year").fill(str(dob.year))
    page.get_by_label("NHS number (optional)").fill(patient.nhs_number_display)
    page.get_by_label("Postcode").fill("SE1 7EH")
    page.get_by_label("South East London").check()
    page.get_by_label("Email address").fill("patient@example.com")
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("heading", name="Check your answers before sending your request")).to_be_visible()
    page.get_by_role("button", name="Send request").click()

    expect(page.get_by_role("heading", name="Request received")).to_be_visible()
    reference = page.locator(".nhsuk-panel__body strong").inner_text()
    assert re.fullmatch(r"OPT-[A-Z2-9]{8}", reference)
    assert_accessible()
    objection = Objection.objects.get(reference=reference)
    assert objection.status == Objection.Status.RECEIVED and objection.patient is None

    # IG, in admin: find the request in the queue, match it, verify it, uphold it.
    ig = browser.new_context().new_page()
    sign_in(ig, f"{live_server.url}/admin/optout/objection/", ig_officer_account)
    expect(ig).to_have_url(re.compile(r"/admin/optout/objection/$"))
    ig.get_by_role("link", name=reference).click()
    admin_step(ig, f"Match {patient.full_name}", "is matched to")
    ig.get_by_role("button", name="Verify").click()  # how identity was checked is asked for first
    expect(ig.locator(".messagelist .error")).to_contain_text("Select how the requester's identity was checked")
    ig.get_by_label("Phoned back on a number in the record, details confirmed").check()
    admin_step(ig, "Verify", "is verified")
    expect(ig.locator("fieldset", has_text="Identity check")).to_contain_text("Phoned back on a number in the record")
    ig.get_by_label("Reason for upholding").fill("The patient's wish; identity confirmed by phone.")
    admin_step(ig, "Uphold", "is upheld")
    expect(ig.locator("#objection-workflow")).to_contain_text("Upheld")

    # A clinician at the practice (the hospital's entries come from another organisation) opens the record, on a
    # desktop this time, in the same browser the patient used (whose part is done).
    page.set_viewport_size({"width": 1280, "height": 800})
    record_url = f"{live_server.url}/patients/{patient.pk}/"
    sign_in(page, record_url, clinician)
    expect(page).to_have_url(record_url)
    expect(page.get_by_text(OPTED_OUT)).to_be_visible()
    expect(page.get_by_text(OWN_ALERT, exact=True)).to_be_visible()
    expect(page.get_by_text(SHARED_CONDITION)).to_have_count(0)
    expect(page.get_by_text(SHARED_LETTER)).to_have_count(0)
    assert_accessible()
    page.get_by_role("link", name=re.compile("^Letters and discharge information")).first.click()
    expect(page.get_by_text(OPTED_OUT)).to_be_visible()
    expect(page.get_by_text(SHARED_LETTER)).to_have_count(0)
    assert_accessible()

    # The patient changes their mind: IG records the withdrawal (asked to confirm first, with what it will do),
    # and the shared record is back at once.
    ig.get_by_role("button", name="Record withdrawal").click()
    expect(ig.get_by_role("heading", name=f"Record the withdrawal of {reference}?")).to_be_visible()
    expect(ig.locator("#objection-confirmation")).to_contain_text("other organisations' entries are shown again")
    ig.get_by_role("link", name="No, go back").click()  # nothing changed yet
    objection.refresh_from_db()
    assert objection.status == Objection.Status.UPHELD
    ig.get_by_role("button", name="Record withdrawal").click()
    admin_step(ig, "Yes, record the withdrawal", "is withdrawn")
    page.goto(record_url)
    expect(page.get_by_text(OPTED_OUT)).to_have_count(0)
    expect(page.get_by_text(SHARED_CONDITION, exact=True)).to_be_visible()
    expect(page.get_by_text(SHARED_LETTER, exact=True)).to_be_visible()
    assert_accessible()

    objection.refresh_from_db()
    assert objection.status == Objection.Status.WITHDRAWN and objection.patient == patient
    trail = AuditEvent.objects.filter(target_type="Objection", target_id=str(objection.pk)).order_by("at", "pk")
    assert [event.action for event in trail] == [
        "objection.received",
        "objection.matched",
        "objection.verified",
        "objection.upheld",
        "objection.withdrawn",
    ]
    assert csp_errors == []
