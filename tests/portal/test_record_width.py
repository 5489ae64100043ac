"""Record pages use the width of a clinician's screen: a fluid container, and organisations by the short name IG
gave them (the full name as its title, and written out on keyboard focus); an appointment names its source once."""

import pytest
from django.urls import reverse

from tests import factories

pytestmark = pytest.mark.django_db

FULL = "St Elsewhere NHS Foundation Trust"
SHORT_NAME = f'<abbr class="app-org__short" title="{FULL}" tabindex="0">St Elsewhere</abbr>'


def page(client, user, name, patient):
    client.force_login(user)
    response = client.get(reverse(name, args=[patient.pk]))
    assert response.status_code == 200
    return response.content.decode()


@pytest.fixture
def short_named(other_organisation):
    other_organisation.short_name = "St Elsewhere"
    other_organisation.save()
    return other_organisation


@pytest.mark.parametrize("name", ["record-summary", "record-medications", "record-results", "record-coverage"])
def test_record_pages_are_fluid(client, clinician, patient, name):
    body = page(client, clinician, name, patient)
    assert '<div class="nhsuk-width-container-fluid app-record-container">' in body


def test_other_pages_keep_the_design_systems_width(client, clinician):
    client.force_login(clinician)
    body = client.get(reverse("home")).content.decode()
    assert '<div class="nhsuk-width-container">' in body and "nhsuk-width-container-fluid" not in body


def test_a_short_name_stands_for_the_full_name_in_tables_source_lines_and_the_sources_list(
    client, clinician, patient, short_named
):
    factories.MedicationFactory(patient=patient, source_organisation=short_named)
    factories.LetterFactory(patient=patient, source_organisation=short_named)
    medications = page(client, clinician, "record-medications", patient)
    assert f'<span class="app-org">{SHORT_NAME}<span class="app-org__full" aria-hidden="true">{FULL}</span></span>' in (
        medications
    )
    letters = page(client, clinician, "record-letters", patient)
    assert f'From <span class="app-source__org"><span class="app-org">{SHORT_NAME}' in letters
    summary = page(client, clinician, "record-summary", patient)
    assert f'<li><span class="app-org">{SHORT_NAME}' in summary  # "Sources on this page", with its freshness


def test_an_organisation_without_a_short_name_is_shown_by_its_name(client, clinician, patient, other_organisation):
    factories.MedicationFactory(patient=patient, source_organisation=other_organisation)
    body = page(client, clinician, "record-medications", patient)
    assert f'<span class="nhsuk-table-responsive__heading" aria-hidden="true">From </span>\n  {FULL}<span' in body
    assert "app-org__short" not in body


def appointment_rows(body):
    table = body[body.index('<tbody class="nhsuk-table__body">') : body.index("</tbody>")]
    return [row for row in table.split('<tr class="nhsuk-table__row') if "</td>" in row]


def test_an_appointment_at_its_own_source_names_the_source_once(client, clinician, patient, other_organisation):
    """Sources (and the demo) often give the trust itself as the place: "From" already says it."""
    factories.AppointmentFactory(
        patient=patient, source_organisation=other_organisation, location=FULL, clinician="Dr Ngozi Adeyemi"
    )
    (row,) = appointment_rows(page(client, clinician, "record-appointments", patient))
    assert row.count(FULL) == 1
    assert "Site not given" in row and "Dr Ngozi Adeyemi" in row


def test_an_appointment_at_a_named_place_keeps_it(client, clinician, patient, short_named):
    factories.AppointmentFactory(patient=patient, source_organisation=short_named, location="St Elsewhere")
    factories.AppointmentFactory(patient=patient, source_organisation=short_named, location="Outpatients, Wing B")
    rows = appointment_rows(page(client, clinician, "record-appointments", patient))
    assert sum("Site not given" in row for row in rows) == 1  # its short name is the source too
    assert sum("Outpatients, Wing B" in row for row in rows) == 1
