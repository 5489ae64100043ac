"""Dates the source did not give stay missing: shown "Date not recorded", listed after dated entries, and
never replaced by the time carerecord received the entry. The same on PostgreSQL and SQLite."""

import datetime
from datetime import UTC
from decimal import Decimal

import pytest
from django.urls import reverse

from patients.categories import Category, entry_model
from sharing import record as sections
from sharing.access import decide
from tests import factories

pytestmark = [pytest.mark.django_db, pytest.mark.hazard("H-09")]


def at(year, month=1, day=1):
    return datetime.datetime(year, month, day, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize("category", [c for c in Category if c != Category.TEAMS], ids=str)
def test_undated_entries_are_listed_after_dated_ones(clinician, patient, other_organisation, category):
    factory = factories.ENTRY_FACTORIES[entry_model(category)]
    source = {"patient": patient, "source_organisation": other_organisation}
    undated_first = factory(**source, effective_at=None)
    old = factory(**source, effective_at=at(2019))
    new = factory(**source, effective_at=at(2024))
    undated_last = factory(**source, effective_at=None)
    listed = list(sections.entries(patient, decide(clinician, patient), category))
    assert listed == [new, old, undated_last, undated_first]  # newest first; undated after, last received first


def test_the_summary_lists_an_undated_active_problem_after_dated_ones(clinician, patient, other_organisation):
    source = {"patient": patient, "source_organisation": other_organisation}
    undated = factories.ConditionFactory(**source, effective_at=None, name="Hip replacement")
    dated = factories.ConditionFactory(**source, effective_at=at(2020))
    [conditions] = [
        s for s in sections.summary(patient, decide(clinician, patient), 5) if s.category == Category.CONDITIONS
    ]
    assert conditions.items == [dated, undated]


def test_an_undated_entry_reads_date_not_recorded_with_its_recorded_and_received_dates_labelled(
    client, clinician, patient, other_organisation
):
    """UKCore-Condition-HipReplacement-Example has no onset: it once read "onset today"."""
    factories.ConditionFactory(
        patient=patient,
        source_organisation=other_organisation,
        name="Hip replacement",
        effective_at=None,
        recorded_at=at(2024, 3, 3),
    )
    client.force_login(clinician)
    for url in (reverse("record-summary", args=[patient.pk]), reverse("record-conditions", args=[patient.pk])):
        body = client.get(url).content.decode()
        row = body[body.index("Hip replacement") :]
        row = row[: row.index("</tr>")]
        assert "Date not recorded" in row
        assert 'Recorded <time class="app-nowrap" datetime="2024-03-03T09:00:00+00:00">3 Mar 2024</time>' in row
        assert "Received" in row  # carerecord's own date, labelled, for an undated entry only


def test_a_dated_entry_keeps_onset_and_recorded_apart_and_says_nothing_of_receipt(
    client, clinician, patient, other_organisation
):
    factories.ConditionFactory(
        patient=patient,
        source_organisation=other_organisation,
        name="Asthma",
        effective_at=at(2001, 6, 1),
        recorded_at=at(2002, 2, 1),
    )
    client.force_login(clinician)
    body = client.get(reverse("record-conditions", args=[patient.pk])).content.decode()
    row = body[body.index("Asthma") :]
    row = row[: row.index("</tr>")]
    assert "1 Jun 2001" in row and "Recorded" in row and "1 Feb 2002" in row
    assert "Received" not in row and "Date not recorded" not in row
    assert '<th class="nhsuk-table__header" scope="col" role="columnheader">Onset</th>' in body


def test_an_undated_letter_or_result_says_so_in_its_source_line(client, clinician, patient, other_organisation):
    factories.LetterFactory(patient=patient, source_organisation=other_organisation, effective_at=None)
    result = factories.ResultFactory(patient=patient, source_organisation=other_organisation, effective_at=None)
    factories.ObservationFactory(result=result)
    client.force_login(clinician)
    for name in ("record-letters", "record-results", "record-summary"):
        body = client.get(reverse(name, args=[patient.pk])).content.decode()
        assert f"{other_organisation.name}</span>, date not recorded (received" in body, name


def observe(patient, source, code, value, effective_at):
    result = factories.ResultFactory(patient=patient, source_organisation=source, effective_at=effective_at)
    return factories.ObservationFactory(result=result, code=code, value=Decimal(value), effective_at=effective_at)


def test_a_test_with_only_undated_observations_still_shows_its_latest(clinician, patient, other_organisation):
    """MAX() ignores NULL: a code whose observations are all undated once dropped out of the tests table."""
    observe(patient, other_organisation, "2345-7", "5", None)
    last = observe(patient, other_organisation, "2345-7", "6", None)
    dated = observe(patient, other_organisation, "4548-4", "40", at(2022))
    observe(patient, other_organisation, "4548-4", "41", None)  # an undated one beside dated ones
    latest = {o.code: o for o in sections.latest_by_test(patient, decide(clinician, patient))}
    assert latest["2345-7"] == last and latest["2345-7"].count == 2
    assert latest["4548-4"] == dated and latest["4548-4"].count == 2


def test_the_trend_charts_dated_values_and_lists_the_undated_ones_too(client, clinician, patient, other_organisation):
    observe(patient, other_organisation, "4548-4", "40", at(2021))
    observe(patient, other_organisation, "4548-4", "42", at(2022))
    observe(patient, other_organisation, "4548-4", "44", None)
    client.force_login(clinician)
    response = client.get(reverse("record-result-trend", args=[patient.pk, "4548-4"]))
    assert len(response.context["chart"].points) == 2
    assert response.context["test"].value == Decimal("42")  # the newest dated, not the undated one
    body = response.content.decode()
    assert "Date not recorded" in body and "1 with no date recorded" in body
    assert body.count("<tr") == 1 + 3


def test_a_test_only_ever_undated_has_a_trend_page_with_no_chart(client, clinician, patient, other_organisation):
    observe(patient, other_organisation, "2345-7", "5", None)
    client.force_login(clinician)
    response = client.get(reverse("record-result-trend", args=[patient.pk, "2345-7"]))
    assert response.status_code == 200 and response.context["chart"] is None
    assert "Date not recorded" in response.content.decode()
