"""IG answer a patient who asks who has looked at their record: the access log (in words, fitting a 1280 px
screen), the patient's "who has seen this record", the subject access form and the letter, printed to PDF. axe
(WCAG 2.2 AA) clean on each page IG and the patient read."""

import datetime
import io
import re

import pytest
from playwright.sync_api import expect
from pypdf import PdfReader

from audit.models import AccessBasis, AccessEvent, AccessOutcome, AuditEvent
from audit.names import Action
from sharing import actions
from tests import factories
from tests.audit.test_audit_admin import access
from tests.browser.test_optout_journey import ig_officer_account  # noqa: F401 (a fixture)
from tests.browser.test_print_journey import sign_in_as

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

UTC = datetime.UTC
LONG_ROLE = "Consultant in emergency medicine and acute internal medicine (locum)"


@pytest.fixture
def history(patient, clinician, clinician_other_org, organisation):
    """A record looked at on two days, by two people, with an emergency access, a search, a refusal and long
    names, roles and addresses (the widest a row gets), and a page of others' rows in the log."""
    patient.postcode = "SW91NQ"
    patient.save()
    professional = clinician.professional
    professional.job_title = LONG_ROLE
    professional.save()
    base = datetime.datetime(2025, 11, 5, 9, 5, tzinfo=UTC)
    access(clinician, patient, at=base, professional_role=LONG_ROLE)
    access(
        clinician, patient, at=base + datetime.timedelta(hours=2), page="record:letters", professional_role=LONG_ROLE
    )
    access(clinician, patient, at=base + datetime.timedelta(days=1), basis=AccessBasis.NONE, page="search:nhs")
    access(
        clinician_other_org,
        patient,
        at=base + datetime.timedelta(days=1, hours=3),
        outcome=AccessOutcome.REFUSED,
        basis=AccessBasis.NONE,
        reason="no-care-relationship",
    )
    grant = actions.break_glass(by=clinician_other_org, patient=patient, reason_code="emergency-treatment")
    access(
        clinician_other_org,
        patient,
        at=grant.started_at + datetime.timedelta(minutes=1),
        basis=AccessBasis.BREAK_GLASS,
        page="record:emergency",
    )
    wordy = factories.ProfessionalFactory(
        organisation=factories.OrganisationFactory(name="Guy's and St Thomas' NHS Foundation Trust Community Services")
    )
    wordy.user.email = "a.very-long-firstname.and-a-double-barrelled-surname@gstt.carerecord.test"
    wordy.user.save()
    for number in range(40):
        access(
            wordy.user,
            factories.PatientFactory(),
            at=base - datetime.timedelta(hours=number),
            page=["fhir:MedicationStatement:history", "admin:demographics-conflicts", "my-patients:recent"][number % 3],
            professional_role=LONG_ROLE,
            professional_name="Dr Alexandra Montgomery-Fitzwilliam-Worthington",
        )
    return patient


def pdf_text(page):
    document = PdfReader(io.BytesIO(page.pdf(format="A4")))
    return " ".join(" ".join(p.extract_text() for p in document.pages).split())


def test_finding_the_access_log_fits_a_1280_px_screen(live_server, page, history, ig_officer_account):  # noqa: F811
    sign_in_as(page, live_server, ig_officer_account)
    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto(f"{live_server.url}/admin/audit/accessevent/")
    table = page.locator("#result_list")
    expect(table).to_be_visible()
    headers = [text.strip() for text in table.locator("thead th").all_text_contents()]
    assert headers == ["When", "Who", "Patient", "Outcome and basis", "Page seen"]
    expect(page.locator("#changelist-filter")).to_be_visible()
    widths = page.evaluate("[document.scrollingElement.scrollWidth, window.innerWidth]")
    assert widths[0] <= widths[1], widths
    box = table.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 1280, box
    # Nor inside the list: admin scrolls a wide table in its own box (which is how the nine columns of codes hid
    # theirs, under the filters).
    results = page.evaluate(
        "(() => { const r = document.querySelector('#changelist .results'); return [r.scrollWidth, r.clientWidth]; })()"
    )
    assert results[0] <= results[1], results
    assert box["x"] + box["width"] <= page.locator("#changelist-filter").bounding_box()["x"], box
    # Every column's cells are on screen, the last one too.
    last = table.locator("tbody tr").first.locator("td").last.bounding_box()
    assert last["x"] + last["width"] <= 1280, last
    expect(table).to_contain_text("Letters and discharge information")
    expect(table).not_to_contain_text("record:letters")


@pytest.mark.hazard("H-03")
def test_ig_answer_a_subject_access_request_with_a_letter(
    live_server,
    page,
    history,
    clinician,
    clinician_other_org,
    ig_officer_account,  # noqa: F811
    assert_accessible,
    csp_errors,
):
    patient = history

    def check_page():
        """The page as loaded blocked nothing (no inline script or style); then axe. axe's own probes of form
        fields apply inline styles, which the policy blocks and reports: those are not the page's."""
        assert csp_errors == [], page.url
        assert_accessible()
        csp_errors.clear()

    sign_in_as(page, live_server, ig_officer_account)
    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto(f"{live_server.url}/admin/audit/accessevent/")
    page.get_by_role("link", name=patient.nhs_number_display).first.click()

    expect(page.get_by_role("heading", name="Who has seen this record")).to_be_visible()
    expect(page.locator("#result_list")).to_contain_text("Search (no record opened)")
    check_page()
    page.get_by_role("link", name="Subject access letter").click()

    expect(page.get_by_role("heading", name="Answer a subject access request")).to_be_visible()
    check_page()
    page.get_by_label("To:", exact=True).fill("2024-01-01")
    page.get_by_label("From:", exact=True).fill("2025-01-01")
    page.get_by_role("button", name="Open the letter").click()
    expect(page.locator(".errornote")).to_contain_text("The first day is after the last day")
    check_page()
    page.get_by_label("From:", exact=True).fill("")
    page.get_by_label("To:", exact=True).fill("")
    page.get_by_role("button", name="Open the letter").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Who has looked at your shared care record")
    check_page()
    letter = page.locator("main")
    expect(letter).to_contain_text(patient.full_name)
    expect(letter).to_contain_text("SW9 1NQ")
    expect(letter).to_contain_text("Reason given: to give you emergency treatment")
    (opened,) = AuditEvent.objects.filter(action=Action.SUBJECT_ACCESS_LETTER)
    assert AccessEvent.objects.filter(page="admin:subject-access", patient_id=patient.pk).count() == 1

    text = pdf_text(page)
    assert patient.full_name in text and patient.nhs_number_display in text and "SW9 1NQ" in text
    assert f"SAR-{opened.pk:06d}" in text
    assert clinician.professional.name in text and "Letters and discharge information" in text
    assert clinician_other_org.professional.name in text and "nothing of your record was shown" in text
    assert "Wednesday 5 Nov 2025" in text
    # The letter alone: none of admin, none of the screen's links.
    for chrome in ("Back to who has seen this record", "Change the period", "Django", "Log out", "/admin/"):
        assert chrome not in text, chrome
    assert re.search(r"Date \d{1,2} \w{3} \d{4}", text)
    assert csp_errors == []
