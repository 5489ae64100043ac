"""Issue 18: the access log reads in words, not codes — the changelist, a row's page, "who has seen this record"
and the CSV export — in the one date and time format, with NHS numbers as written on a letter."""

import pytest
from django.urls import reverse
from django.utils.html import escape

from audit import export as audit_export
from audit.models import AccessBasis, AccessOutcome
from tests.audit.test_audit_admin import CHANGELIST, access, moment, read_csv
from tests.audit.test_subject_access import words

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _admin_settings(admin_settings):
    """Admin pages render the same whatever the environment's static and TLS settings."""


def results_table(response):
    body = response.content.decode()
    start = body.index('<table id="result_list"')
    return body[start : body.index("</table>", start)]


@pytest.fixture
def rows(patient, clinician):
    role = clinician.professional.job_title
    return {
        "letters": access(
            clinician, patient, at=moment(2026, 12, 2, 18, 47), page="record:letters", professional_role=role
        ),
        "search": access(clinician, patient, at=moment(2026, 12, 2, 18, 50), basis=AccessBasis.NONE, page="search:nhs"),
        "refused": access(
            clinician,
            patient,
            at=moment(2026, 12, 2, 18, 55),
            outcome=AccessOutcome.REFUSED,
            basis=AccessBasis.NONE,
            reason="no-care-relationship",
        ),
    }


def test_finding_the_access_log_names_the_page_not_its_code(ig_client, rows):
    table = results_table(ig_client.get(reverse(CHANGELIST)))
    assert "Letters and discharge information" in table
    assert "record:letters" not in table and "search:nhs" not in table


def test_finding_a_search_row_reads_as_a_search_not_no_basis(ig_client, rows):
    table = results_table(ig_client.get(reverse(CHANGELIST)))
    assert "Search (no record opened)" in table and "Search by NHS number" in table
    assert "No basis" not in table
    assert "Refused: no care relationship with the patient" in table  # a refusal says why, in words


@pytest.mark.hazard("H-09")
def test_finding_the_access_log_uses_the_one_date_format_and_writes_nhs_numbers_as_on_a_letter(
    ig_client, rows, patient, clinician
):
    table = results_table(ig_client.get(reverse(CHANGELIST)))
    assert "2 Dec 2026, 18:47" in words(table) and "p.m." not in table
    assert f">{patient.nhs_number_display}</a>" in table  # "999 500 0001", a link to who has seen the record
    professional = clinician.professional
    # Who, their role then and their organisation, and the account, in one column.
    assert professional.name in words(table) and clinician.email in words(table)
    assert escape(f"{professional.job_title} · {professional.organisation.ods_code}") in table


def test_a_rows_own_page_says_it_in_words_beside_the_codes(ig_client, rows, clinician):
    body = ig_client.get(reverse("admin:audit_accessevent_change", args=[rows["refused"].pk])).content.decode()
    assert "Refused: no care relationship with the patient" in body
    assert "no-care-relationship" in body  # the code is still there, for IG to filter on
    body = ig_client.get(reverse("admin:audit_accessevent_change", args=[rows["letters"].pk])).content.decode()
    assert "Letters and discharge information" in body and "2 Dec 2026, 18:47" in words(body)
    heading = f"2 Dec 2026, 18:47: {clinician.professional.name}, Letters and discharge information"
    assert f"<h2>{escape(heading)}</h2>" in body


def test_who_has_seen_this_record_reads_in_words(ig_client, rows, patient, clinician):
    body = ig_client.get(reverse("admin:audit_accessevent_patient", args=[patient.pk])).content.decode()
    assert "Letters and discharge information" in body and "Search (no record opened)" in body
    assert "No basis" not in body and "record:letters" not in body
    assert "2 Dec 2026, 18:47" in body
    assert escape(clinician.professional.job_title) in body  # the role they acted in then


def test_finding_the_csv_export_has_the_page_in_words_beside_its_code(ig_client, rows):
    exported = read_csv(ig_client.post(reverse("admin:audit_accessevent_export")))
    header = exported[0]
    by_page = {row[header.index("page")]: row for row in exported[1:]}
    assert by_page["record:letters"][header.index("page_name")] == "Letters and discharge information"
    assert by_page["search:nhs"][header.index("outcome_and_basis")] == "Search (no record opened)"
    assert by_page["record:summary"][header.index("outcome_and_basis")] == (
        "Refused: no care relationship with the patient"
    )
    assert by_page["record:letters"][header.index("professional_role")] == rows["letters"].professional_role
    assert header == list(audit_export.ACCESS_EVENT_COLUMNS)
