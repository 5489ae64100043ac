"""Immunisations and procedures on the record (issue 13): each a category of its own, with its page, its place on
the summary (in the record's order, newest few and "N of M"), in the navigation, in "What is shared" and as a
sharing-agreement choice; each entry with its source and date ("Date not recorded" where the source gave none)."""

from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from demo.catalogue import NOT_SHARED, ORGANISATIONS
from directory.actions import add_team_member
from directory.models import Organisation
from patients.categories import Category
from patients.models import Immunisation, Procedure
from sharing.models import SharingAgreement
from tests import factories

pytestmark = pytest.mark.django_db

NEW = (Category.PROCEDURES, Category.IMMUNISATIONS)


def page(client, user, name, patient):
    client.force_login(user)
    response = client.get(reverse(name, args=[patient.pk]))
    assert response.status_code == 200
    return response.content.decode()


def section_html(body, category):
    start = body.index(f'aria-labelledby="section-{category.value}"')
    end = body.find("<section", start)
    return body[start : end if end != -1 else None]


def test_they_sit_after_results_and_before_letters():
    order = list(Category)
    assert order.index(Category.RESULTS) < order.index(Category.PROCEDURES) < order.index(Category.IMMUNISATIONS)
    assert order.index(Category.IMMUNISATIONS) < order.index(Category.LETTERS)
    assert (Category.PROCEDURES.label, Category.IMMUNISATIONS.label) == ("Procedures", "Immunisations")


@pytest.mark.hazard("H-04")
def test_the_summary_shows_the_newest_few_of_each_with_how_many(
    client, clinician, patient, other_organisation, settings
):
    settings.RECORD_SUMMARY_ITEMS = 3
    now = timezone.now()
    vaccines = [
        factories.ImmunisationFactory(
            patient=patient,
            source_organisation=other_organisation,
            vaccine=f"Vaccine {n}",
            effective_at=now - timedelta(days=30 * n + 1),
        )
        for n in range(5)
    ]
    undated = factories.ImmunisationFactory(
        patient=patient, source_organisation=other_organisation, vaccine="BCG vaccine", effective_at=None
    )
    operation = factories.ProcedureFactory(patient=patient, source_organisation=other_organisation)
    body = page(client, clinician, "record-summary", patient)
    positions = [body.index(f'id="section-{c.value}"') for c in (Category.RESULTS, *NEW, Category.LETTERS)]
    assert positions == sorted(positions)

    immunisations = section_html(body, Category.IMMUNISATIONS)
    shown = [v for v in vaccines if escape(v.vaccine) in immunisations]
    assert shown == vaccines[:3] and undated.vaccine not in immunisations  # undated last: not among the newest
    assert "<strong>3 of 6</strong>" in immunisations
    assert reverse("record-immunisations", args=[patient.pk]) in immunisations
    procedures = section_html(body, Category.PROCEDURES)
    assert operation.name in procedures and escape(other_organisation.name) in procedures
    assert "View all procedures" in procedures


@pytest.mark.hazard("H-04")
def test_the_immunisations_page_shows_each_with_its_source_date_and_details(
    client, clinician, patient, other_organisation
):
    given = factories.ImmunisationFactory(
        patient=patient,
        source_organisation=other_organisation,
        effective_at=datetime(2024, 10, 7, 10, 30, tzinfo=UTC),
        dose="2 of 3",
        notes="Manufacturer: Sanofi",
    )
    factories.ImmunisationFactory(
        patient=patient,
        source_organisation=other_organisation,
        vaccine="Live attenuated influenza vaccine nasal spray",
        status=Immunisation.Status.NOT_DONE,
        reason_not_given="Parent declined",
        site="",
        route="",
        lot_number="",
        dose="",
        effective_at=datetime(2023, 10, 1, tzinfo=UTC),
    )
    body = page(client, clinician, "record-immunisations", patient)
    assert escape(given.vaccine) in body and "Manufacturer: Sanofi" in body
    assert 'datetime="2024-10-07T11:30:00+01:00"' in body and "7 Oct 2024" in body  # Europe/London
    assert escape(other_organisation.name) in body
    assert '<strong class="nhsuk-tag nhsuk-tag--green">Given</strong>' in body
    assert '<strong class="nhsuk-tag nhsuk-tag--orange">Not given</strong>' in body
    assert "Reason: Parent declined" in body
    for text in ("2 of 3", "Left upper arm", "Intramuscular", "FL2291", "Batch number", "Site and route"):
        assert text in body, text
    assert "Site not recorded" in body and "Route not recorded" in body


@pytest.mark.hazard("H-04")
def test_the_procedures_page_shows_each_with_its_source_date_and_details(
    client, clinician, patient, other_organisation
):
    factories.ProcedureFactory(
        patient=patient,
        source_organisation=other_organisation,
        effective_at=datetime(2022, 3, 14, 9, 0, tzinfo=UTC),
        notes="Reason: osteoarthritis",
    )
    factories.ProcedureFactory(
        patient=patient,
        source_organisation=other_organisation,
        name="Cataract extraction",
        status=Procedure.Status.PREPARATION,
        body_site="Right eye",
        outcome="",
        performer="",
        effective_at=None,
    )
    body = page(client, clinician, "record-procedures", patient)
    for text in ("Total replacement of hip", "Left hip", "Uncomplicated", "Mr A Surgeon", "Reason: osteoarthritis"):
        assert text in body, text
    assert "14 Mar 2022" in body and escape(other_organisation.name) in body
    assert '<strong class="nhsuk-tag nhsuk-tag--green">Completed</strong>' in body
    assert '<strong class="nhsuk-tag nhsuk-tag--yellow">Planned</strong>' in body
    for heading in ("Procedure", "Status", "Body site", "Outcome", "Performed by", "Date", "From"):
        assert f'role="columnheader">{heading}</th>' in body


@pytest.mark.hazard("H-09")
def test_an_undated_entry_says_so_and_never_shows_the_day_it_arrived(client, clinician, patient, other_organisation):
    recorded = datetime(2014, 6, 2, 9, 0, tzinfo=UTC)
    factories.ImmunisationFactory(
        patient=patient, source_organisation=other_organisation, effective_at=None, recorded_at=recorded
    )
    factories.ProcedureFactory(patient=patient, source_organisation=other_organisation, effective_at=None)
    for name in ("record-immunisations", "record-procedures"):
        body = page(client, clinician, name, patient)
        assert "Date not recorded" in body
        today = timezone.localdate()
        assert f'datetime="{today.isoformat()}' not in body.split("<tbody", 1)[1].split("Received", 1)[0]
    assert "Recorded <time" in page(client, clinician, "record-immunisations", patient)


def test_they_are_in_the_navigation_and_what_is_shared(client, clinician, patient, other_organisation):
    factories.ImmunisationFactory(patient=patient, source_organisation=other_organisation)
    SharingAgreement.objects.filter(organisation=other_organisation, category=Category.PROCEDURES).update(shares=False)
    summary = page(client, clinician, "record-summary", patient)
    for category in NEW:
        assert f'href="{reverse(f"record-{category.value}", args=[patient.pk])}"' in summary
    coverage = page(client, clinician, "record-coverage", patient).split(escape(other_organisation.name), 1)[1]
    immunisations = coverage.split(">Immunisations</dt>", 1)[1].split("</dd>", 1)[0]
    assert "Shared: 1 item" in immunisations
    procedures = coverage.split(">Procedures</dt>", 1)[1].split("</dd>", 1)[0]
    assert "Not shared by this organisation" in procedures


@pytest.mark.hazard("H-11")
def test_a_sensitive_or_unshared_entry_stays_with_its_source(client, clinician, patient, other_organisation):
    factories.ImmunisationFactory(
        patient=patient, source_organisation=other_organisation, vaccine="HPV vaccine", sensitive=True
    )
    SharingAgreement.objects.filter(organisation=other_organisation, category=Category.PROCEDURES).update(shares=False)
    factories.ProcedureFactory(patient=patient, source_organisation=other_organisation, name="Termination")
    immunisations = page(client, clinician, "record-immunisations", patient)
    assert "HPV vaccine" not in immunisations and "1 sensitive" in immunisations
    assert "Termination" not in page(client, clinician, "record-procedures", patient)
    # Its own organisation sees both.
    professional = factories.ProfessionalFactory(organisation=other_organisation)
    team = factories.CareTeamFactory(organisation=other_organisation)
    add_team_member(by=None, team=team, professional=professional)
    factories.InvolvementFactory(patient=patient, care_team=team)
    assert "HPV vaccine" in page(client, professional.user, "record-immunisations", patient)
    assert "Termination" in page(client, professional.user, "record-procedures", patient)


def test_they_are_sharing_agreement_choices():
    choices = dict(SharingAgreement._meta.get_field("category").choices)
    assert choices["procedures"] == "Procedures" and choices["immunisations"] == "Immunisations"


def test_the_demo_gp_practices_share_immunisations_and_the_hospitals_procedures():
    for code, _, kind, _ in ORGANISATIONS:
        if kind == Organisation.Kind.GP_PRACTICE:
            assert Category.IMMUNISATIONS not in NOT_SHARED.get(code, ()), code
        if kind == Organisation.Kind.ACUTE_TRUST:
            assert Category.PROCEDURES not in NOT_SHARED.get(code, ()), code
