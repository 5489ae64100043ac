"""IG's queues open on what needs action (issue 18): the default list hides what is done, "All" shows it, and a
search looks everywhere (what IG type in may name a closed item). Dates 24-hour, postcodes as on a letter."""

import datetime

import pytest
from django.urls import reverse
from django.utils import timezone

from directory import actions as directory_actions
from sharing.models import EntryProblem, Involvement
from tests import factories

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("admin_settings")]


def rows(client, name, **query):
    response = client.get(reverse(name), query)
    assert response.status_code == 200
    return set(response.context["cl"].result_list)


@pytest.mark.hazard("H-03")
def test_finding_the_involvement_list_opens_on_partner_assertions_to_review(ig_client, organisation):
    token, _ = directory_actions.create_api_token(by=None, name="Feed", organisation=organisation)
    asserted = factories.InvolvementFactory()
    Involvement.objects.filter(pk=asserted.pk).update(asserted_by_token=token)
    recorded_here = factories.InvolvementFactory()
    reviewed = factories.InvolvementFactory()
    Involvement.objects.filter(pk=reviewed.pk).update(asserted_by_token=token, reviewed_at=timezone.now())

    changelist = "admin:sharing_involvement_changelist"
    assert rows(ig_client, changelist) == {asserted}
    assert rows(ig_client, changelist, review="all") == {asserted, recorded_here, reviewed}
    assert rows(ig_client, changelist, q=reviewed.patient.nhs_number) == {reviewed}  # a search looks everywhere


def test_finding_reported_entry_problems_open_on_the_open_ones(ig_client, patient, clinician, other_organisation):
    open_one = factories.entry_problem(patient=patient, reporter=clinician, source=other_organisation)
    closed = factories.entry_problem(
        patient=patient, reporter=clinician, source=other_organisation, status=EntryProblem.Status.CLOSED
    )
    changelist = "admin:sharing_entryproblem_changelist"
    assert rows(ig_client, changelist) == {open_one}
    assert rows(ig_client, changelist, status__exact="all") == {open_one, closed}
    assert rows(ig_client, changelist, status__exact="closed") == {closed}
    assert rows(ig_client, changelist, status__exact="nonsense") == {open_one, closed}  # never a 500


def test_finding_postcodes_in_the_patient_list_are_shown_as_on_a_letter(ig_client):
    patient = factories.PatientFactory(postcode="SW91NQ", family_name="Postcoded")
    body = ig_client.get(reverse("admin:patients_patient_changelist"), {"q": patient.nhs_number}).content.decode()
    assert '<td class="field-postcode_display">SW9 1NQ</td>' in body and "SW91NQ" not in body


@pytest.mark.hazard("H-09")
def test_finding_admin_lists_show_24_hour_london_times(ig_client, patient, clinician):
    started = datetime.datetime(2026, 7, 1, 17, 5, tzinfo=datetime.UTC)  # 18:05 in London (summer time)
    factories.break_glass(patient=patient, user=clinician, started_at=started)
    body = ig_client.get(reverse("admin:sharing_breakglass_changelist")).content.decode()
    assert "1 Jul 2026, 18:05" in body and "p.m." not in body
