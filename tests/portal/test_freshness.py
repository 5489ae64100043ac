"""Freshness: nothing is live, so each source says when carerecord last received anything from it, on the
summary (for the sources on the page) and on "What is shared" (for every organisation listed)."""

import datetime

import pytest
from django.urls import reverse
from django.utils import dateformat, timezone

from directory.actions import note_received
from tests import factories

pytestmark = [pytest.mark.django_db, pytest.mark.hazard("H-08")]


@pytest.fixture
def hospital(other_organisation):
    note_received(other_organisation, timezone.now() - datetime.timedelta(hours=2, minutes=1))
    other_organisation.refresh_from_db()
    return other_organisation


def shown(moment):
    """As the pages show a moment: in London time."""
    return dateformat.format(timezone.localtime(moment), "j M Y H:i")


def get(client, user, name, patient):
    client.force_login(user)
    response = client.get(reverse(name, args=[patient.pk]))
    assert response.status_code == 200
    return response.content.decode()


def test_the_summary_says_when_each_source_on_it_last_sent_anything(client, clinician, patient, organisation, hospital):
    silent = factories.OrganisationFactory(name="Quiet Lane Surgery")
    factories.MedicationFactory(patient=patient, source_organisation=hospital)
    factories.AlertFactory(patient=patient, source_organisation=silent)
    factories.SupportPersonFactory(patient=patient, source_organisation=organisation)
    body = get(client, clinician, "record-summary", patient)
    notice = body[body.index("app-record-notice") : body.index("</div>", body.index("app-record-notice"))]
    assert f"{hospital.name} — last received 2\xa0hours ago (" in notice and shown(hospital.last_received_at) in notice
    assert "Quiet Lane Surgery — nothing received yet" in notice
    assert f"{organisation.name} — nothing received yet" in notice  # the support network's source
    assert "It is not live: it shows what each organisation has sent, as of the last time it sent anything" in notice


def test_a_source_with_nothing_on_the_page_is_not_listed(client, clinician, patient, hospital):
    body = get(client, clinician, "record-summary", patient)
    assert hospital.name not in body
    assert "shown for each source on the" in body  # the notice then points to where freshness is shown


def test_what_is_shared_says_when_each_organisation_last_sent_anything(
    client, clinician, patient, organisation, hospital
):
    factories.LetterFactory(patient=patient, source_organisation=hospital)
    body = get(client, clinician, "record-coverage", patient)
    assert "Last received 2\xa0hours ago (" in body and shown(hospital.last_received_at) in body
    assert "Nothing received yet" in body  # the viewer's own organisation has sent nothing


def test_freshness_is_read_with_the_entries_not_by_more_queries(client, clinician, patient, hospital):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.force_login(clinician)
    url = reverse("record-summary", args=[patient.pk])
    client.get(url)
    with CaptureQueriesContext(connection) as before:
        client.get(url)
    for n in range(4):
        factories.LetterFactory(patient=patient, source_organisation=factories.OrganisationFactory(name=f"Trust {n}"))
    with CaptureQueriesContext(connection) as after:
        body = client.get(url).content.decode()
    assert len(after) == len(before)
    assert body.count("nothing received yet") == 4


def test_every_record_page_says_it_is_not_live_and_where_freshness_is(client, clinician, patient):
    body = get(client, clinician, "record-conditions", patient)
    assert "as of the last time it sent anything" in body
    assert reverse("record-coverage", args=[patient.pk]) in body
