"""The access log's codes in words (audit.pages, audit.reasons): every code the apps write has a name, the lists
kept in audit as data agree with the apps they mirror, and a code nobody named still reads as words."""

import pytest

from audit import pages, reasons
from audit.models import AccessBasis, AccessOutcome
from patients.categories import Category
from sharing.access import Reason
from sharing.models import BreakGlass

# What the apps write (grep `page=` in portal/, fhirapi/, sharing/, optout/, patients/, feeds/, identity/).
WRITTEN = [
    "record:summary",
    "record:timeline",
    "record:changes",
    "record:coverage",
    "record:emergency",
    "record:results:trend",
    "record:letters:attachment",
    "record:objection",
    "record:report-problem",
    "record:print:summary",
    "launch",
    "search:nhs",
    "search:name",
    "search:fhir-identifier",
    "my-patients",
    "my-patients:recent",
    "fhir:everything",
    "fhir:Patient",
    "fhir:Binary:read",
    "admin:patient",
    "admin:patient-search",
    "admin:patient-picker",
    "admin:demographics-conflicts",
    "admin:break-glass-review",
    "admin:privacy-alerts",
    "admin:entry-problem",
    "admin:objection-match",
    "admin:hl7-message",
    "admin:hl7-queue",
    "admin:subject-access",
]


def fhir_codes():
    from fhirapi import read

    for resource_type in read.SEARCHABLE:
        yield f"fhir:{resource_type}"
        for action in ("read", "history", "vread"):
            yield f"fhir:{resource_type}:{action}"


def test_finding_every_page_code_the_apps_write_has_a_human_name():
    codes = [
        *WRITTEN,
        *(f"record:{category.value}" for category in Category),
        *(f"record:print:{category.value}" for category in Category),
        *fhir_codes(),
    ]
    for code in codes:
        name = pages.known_name(code)
        assert name, f"{code} has no name of its own (it reads {pages.page_name(code)!r})"
        assert code not in name and pages.page_name(code) == name, code


def test_the_category_names_are_the_categories_own():
    assert {category.value: category.label for category in Category} == pages.CATEGORIES
    assert pages.page_name("record:letters") == "Letters and discharge information"
    assert pages.page_name("record:print:letters") == "Printed: letters and discharge information"


def test_the_admin_page_names_cover_the_admin_writers():
    from feeds.admin import MESSAGE_PAGE, QUEUE_PAGE
    from patients.admin import DATA_QUALITY_PAGE, PATIENT_PAGE, PATIENT_PICKER_PAGE, PATIENT_SEARCH_PAGE

    for code in (MESSAGE_PAGE, QUEUE_PAGE, DATA_QUALITY_PAGE, PATIENT_PAGE, PATIENT_PICKER_PAGE, PATIENT_SEARCH_PAGE):
        assert code in pages.PAGES, code


@pytest.mark.parametrize(
    "code, name",
    [
        ("admin:new-queue", "IG administration: new queue"),
        ("record:something-new", "Record: something new"),
        ("fhir:Unknown:read", "Clinical system: Unknown, read"),
        ("odd", "Odd"),
        ("", "Not recorded"),
        ("x:y:z", "X: y, z"),
    ],
)
def test_a_code_nobody_named_still_reads_as_words(code, name):
    assert pages.page_name(code) == name


def test_the_reason_words_cover_every_reason_the_decision_gives():
    refused = {reason.value for reason in Reason} - {Reason.CARE_TEAM, Reason.BREAK_GLASS}
    assert refused | {"no-match"} == set(reasons.REFUSALS)
    assert set(reasons.BREAK_GLASS_REASONS) == {code.value for code in BreakGlass.ReasonCode}


def test_finding_a_search_or_a_list_is_not_said_to_have_no_basis():
    allowed = AccessOutcome.ALLOWED
    assert reasons.basis_name(basis=AccessBasis.NONE, outcome=allowed, page="search:nhs") == "Search (no record opened)"
    assert reasons.basis_name(basis=AccessBasis.NONE, outcome=allowed, page="my-patients") == "List of patients"
    assert (
        reasons.how(basis=AccessBasis.NONE, outcome=allowed, page="search:name", reason="no-match")
        == "Search (no record opened): no patient found"
    )
    assert (
        reasons.how(
            basis=AccessBasis.NONE, outcome=AccessOutcome.REFUSED, page="record:summary", reason="no-care-relationship"
        )
        == "Refused: no care relationship with the patient"
    )
    assert reasons.basis_name(basis="break-glass", outcome=allowed, page="record:summary") == (
        "Emergency access (break glass)"
    )
    assert reasons.basis_name(basis="something-new", outcome=allowed, page="x") == "Something new"
