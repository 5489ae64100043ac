"""The clinical summary: what a clinician must not miss is never cut short, in a fixed order, with counts."""

import datetime
import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from patients.categories import Category
from patients.models import Medication
from sharing import record as sections
from sharing.access import decide
from tests import factories

pytestmark = pytest.mark.django_db


def summary_page(client, user, patient):
    client.force_login(user)
    response = client.get(reverse("record-summary", args=[patient.pk]))
    assert response.status_code == 200
    return response


def section_of(response, category):
    return next(s for s in response.context["sections"] if s.category == category)


def section_html(body, category_value):
    """The HTML of one summary section, from its heading to the next section."""
    start = body.index(f'aria-labelledby="section-{category_value}"')
    end = body.find("<section", start)
    return body[start : end if end != -1 else None]


def ago(**delta):
    return timezone.now() - timedelta(**delta)


@pytest.mark.hazard("H-07")
def test_issue_12_the_current_medicine_is_on_the_summary_though_five_newer_ones_are_not_current(
    client, clinician, patient, other_organisation, settings
):
    """Carly Wallace's case: six medications, the one current medicine the oldest, the summary's limit five.
    Before, the newest five (an amoxicillin course completed in 2024 among them) hid Ramipril, and nothing
    said "5 of 6"."""
    settings.RECORD_SUMMARY_ITEMS = 5
    ramipril = factories.MedicationFactory(
        patient=patient,
        source_organisation=other_organisation,
        name="Ramipril 5 mg capsules",
        effective_at=ago(days=2000),
    )
    for n, name in enumerate(["Amoxicillin 500 mg", "Naproxen 250 mg", "Prednisolone 5 mg", "Omeprazole", "Codeine"]):
        factories.MedicationFactory(
            patient=patient,
            source_organisation=other_organisation,
            name=name,
            kind=Medication.Kind.ACUTE,
            status=Medication.Status.COMPLETED,
            effective_at=ago(days=700 - n),
            ended_on=datetime.date(2024, 3, 1 + n),
        )
    response = summary_page(client, clinician, patient)
    medications = section_of(response, Category.MEDICATIONS)
    assert medications.items == [ramipril]
    assert (medications.shown, medications.total, medications.more) == (1, 6, 5)
    html = section_html(response.content.decode(), "medications")
    assert "Ramipril 5 mg capsules" in html and "Amoxicillin" not in html
    assert "All current medications are shown; 5 others on the full list" in html
    assert reverse("record-medications", args=[patient.pk]) in html


@pytest.mark.hazard("H-07")
def test_every_current_medication_problem_allergy_and_alert_is_shown_however_many(
    client, clinician, patient, other_organisation, settings
):
    settings.RECORD_SUMMARY_ITEMS = 2
    source = {"patient": patient, "source_organisation": other_organisation}
    current = {
        Category.ALERTS: [factories.AlertFactory(**source, text=f"Alert {n}") for n in range(7)],
        Category.ALLERGIES: [
            factories.AllergyFactory(**source, substance=f"Substance {n}", clinical_status=status)
            for n, status in enumerate(["active", "", "active", "", "active", "active"])
        ],
        Category.MEDICATIONS: [factories.MedicationFactory(**source, name=f"Medicine {n}") for n in range(9)],
        Category.CONDITIONS: [factories.ConditionFactory(**source, name=f"Problem {n}") for n in range(8)],
    }
    # Not current: on their category pages, counted, not on the summary.
    factories.AlertFactory(**source, text="Old alert", active=False)
    factories.AllergyFactory(**source, substance="Outgrown allergy", clinical_status="resolved")
    factories.AllergyFactory(**source, substance="Inactive allergy", clinical_status="inactive")
    factories.ConditionFactory(**source, name="Resolved problem", clinical_status="resolved")
    factories.ConditionFactory(**source, name="Problem in remission", clinical_status="remission")
    response = summary_page(client, clinician, patient)
    body = response.content.decode()
    for category, entries in current.items():
        section = section_of(response, category)
        assert sorted(e.pk for e in section.items) == sorted(e.pk for e in entries), category
        assert section.total == len(entries) + section.more
    for hidden in ("Old alert", "Outgrown allergy", "Inactive allergy", "Resolved problem", "Problem in remission"):
        assert hidden not in body
    assert "All active conditions are shown; 2 others on the full list" in section_html(body, "conditions")
    assert "All active alerts are shown; 1 other on the full list" in section_html(body, "alerts")


@pytest.mark.hazard("H-07")
def test_current_medications_by_kind_then_those_stopped_in_the_last_three_months_marked_with_the_date(
    client, clinician, patient, other_organisation
):
    source = {"patient": patient, "source_organisation": other_organisation}
    hospital = factories.MedicationFactory(
        **source, name="Hospital medicine", kind="hospital", effective_at=ago(days=1)
    )
    acute = factories.MedicationFactory(**source, name="Acute medicine", kind="acute", effective_at=ago(days=2))
    repeat = factories.MedicationFactory(**source, name="Repeat medicine", kind="repeat", effective_at=ago(days=900))
    today = timezone.localdate()
    stopped = factories.MedicationFactory(
        **source, name="Stopped medicine", status="stopped", ended_on=today - timedelta(days=20)
    )
    completed = factories.MedicationFactory(
        **source, name="Completed course", status="completed", ended_on=today - timedelta(days=60)
    )
    factories.MedicationFactory(**source, name="Long stopped", status="stopped", ended_on=today - timedelta(days=120))
    factories.MedicationFactory(**source, name="Stopped, no date", status="stopped", ended_on=None)
    response = summary_page(client, clinician, patient)
    medications = section_of(response, Category.MEDICATIONS)
    assert medications.items == [repeat, acute, hospital, stopped, completed]
    assert [group.items for group in medications.groups] == [[repeat, acute, hospital], [stopped, completed]]
    html = section_html(response.content.decode(), "medications")
    assert "Stopped or completed in the last 3 months" in html
    assert re.search(r"Stopped <span class=\"app-nowrap\">" + (today - timedelta(days=20)).strftime("%-d %b %Y"), html)
    assert "Long stopped" not in html and "Stopped, no date" not in html
    assert "2 others on the full list" in html


@pytest.mark.hazard("H-07")
def test_other_sections_show_the_newest_few_and_say_how_many_there_are(
    client, clinician, patient, other_organisation, settings
):
    settings.RECORD_SUMMARY_ITEMS = 5
    for n in range(23):
        factories.AppointmentFactory(patient=patient, source_organisation=other_organisation, effective_at=ago(days=n))
    factories.LetterFactory(patient=patient, source_organisation=other_organisation)
    body = summary_page(client, clinician, patient).content.decode()
    appointments = section_html(body, "appointments")
    assert "<strong>5 of 23</strong>" in appointments and "view all appointments" in appointments
    assert appointments.count('<tr class="nhsuk-table__row" role="row">') == 5 + 1  # and the header row
    letters = section_html(body, "letters")
    assert " of " not in letters and "View all letters" in letters


@pytest.mark.hazard("H-07")
def test_a_sections_count_is_of_what_the_viewer_may_see(client, clinician, patient, other_organisation):
    silent = factories.OrganisationFactory(name="Silent Trust", shares=[])
    for n in range(3):
        factories.LetterFactory(patient=patient, source_organisation=other_organisation, title=f"Shared letter {n}")
    factories.LetterFactory(patient=patient, source_organisation=other_organisation, sensitive=True)
    factories.LetterFactory(patient=patient, source_organisation=other_organisation, entered_in_error=True)
    factories.LetterFactory(patient=patient, source_organisation=silent)
    factories.AlertFactory(patient=patient, source_organisation=silent)
    response = summary_page(client, clinician, patient)
    assert section_of(response, Category.LETTERS).total == 3
    assert section_of(response, Category.ALERTS).total == 0


@pytest.mark.hazard("H-07")
def test_the_summary_and_the_navigation_follow_one_clinical_order(client, clinician, patient, full_record):
    expected = [
        "alerts",
        "allergies",
        "medications",
        "conditions",
        "results",
        "procedures",
        "immunisations",
        "letters",
        "appointments",
        "care-plans",
        "events",
        "teams",
    ]
    assert [category.value for category in Category] == expected
    body = summary_page(client, clinician, patient).content.decode()
    headings = re.findall(r'<h2 class="nhsuk-heading-m" id="section-([a-z-]+)">', body)
    assert headings == [*expected, "support-network"]
    nav = body[body.index('aria-label="Patient record"') :]
    nav = nav[: nav.index("</nav>")]
    links = re.findall(r'href="/patients/[^/]+/([a-z-]*)/?"', nav)
    assert links[: len(expected) + 1] == ["", *expected]


@pytest.mark.hazard("H-07")
def test_the_summary_is_the_same_few_queries_however_many_current_entries(
    client, clinician, patient, other_organisation
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def count_queries():
        client.get(reverse("record-summary", args=[patient.pk]))  # warm per-process caches
        with CaptureQueriesContext(connection) as queries:
            client.get(reverse("record-summary", args=[patient.pk]))
        return len(queries)

    client.force_login(clinician)
    factories.MedicationFactory(patient=patient, source_organisation=other_organisation)
    few = count_queries()
    for factory in (factories.MedicationFactory, factories.ConditionFactory, factories.AllergyFactory):
        factory.create_batch(30, patient=patient, source_organisation=other_organisation)
    assert count_queries() == few


@pytest.mark.parametrize(
    "day, months, expected",
    [
        (datetime.date(2026, 12, 2), 3, datetime.date(2026, 9, 2)),
        (datetime.date(2026, 5, 31), 3, datetime.date(2026, 2, 28)),
        (datetime.date(2028, 5, 31), 3, datetime.date(2028, 2, 29)),
        (datetime.date(2026, 2, 15), 3, datetime.date(2025, 11, 15)),
        (datetime.date(2026, 1, 1), 12, datetime.date(2025, 1, 1)),
    ],
)
def test_three_calendar_months_before(day, months, expected):
    assert sections.months_before(day, months) == expected


@pytest.mark.hazard("H-07")
def test_an_opted_out_patients_summary_counts_only_the_viewers_own_entries(
    clinician, patient, organisation, other_organisation, ig_officer
):
    from tests.sharing.test_coverage import upheld_objection

    factories.MedicationFactory(patient=patient, source_organisation=organisation, name="Own medicine")
    factories.MedicationFactory(patient=patient, source_organisation=other_organisation, name="Their medicine")
    upheld_objection(patient, ig_officer)
    [medications] = [
        s for s in sections.summary(patient, decide(clinician, patient), 5) if s.category == Category.MEDICATIONS
    ]
    assert [m.name for m in medications.items] == ["Own medicine"] and medications.total == 1
