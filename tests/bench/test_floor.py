"""The SQL floor must fetch what the pages show: same rows, same order, same access and sharing rules.

Otherwise page time ÷ floor would compare the page with a cheaper query of something else."""

from datetime import timedelta

import pytest
import time_machine
from django.conf import settings
from django.contrib.auth.models import Permission
from django.db import connection
from django.utils import timezone

from bench.floor import Floor
from patients.categories import Category
from patients.models import Observation, Result
from sharing import record as sections
from sharing.access import decide
from sharing.models import Involvement
from tests import factories

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the floor is PostgreSQL SQL"),
]


@pytest.fixture
def record(patient, organisation, other_organisation, care_team):
    """Entries of every category from three organisations, including what no one else may see: a sensitive
    entry, one entered in error, and an organisation that shares nothing; teams current and ended."""
    silent = factories.OrganisationFactory(name="Silent Trust", shares=[])
    now = timezone.now()
    for entry_factory in factories.ENTRY_FACTORIES.values():
        for n, source in enumerate([organisation, other_organisation, silent, other_organisation, organisation] * 2):
            entry_factory(patient=patient, source_organisation=source, effective_at=now - timedelta(days=n * 3 + 1))
        entry_factory(patient=patient, source_organisation=other_organisation, sensitive=True, effective_at=now)
        entry_factory(patient=patient, source_organisation=other_organisation, entered_in_error=True, effective_at=now)
    # What the summary shows in full, and what it leaves to the category page: each status of each, undated
    # entries (sorted after dated ones), standalone observations beside the reports.
    long_ago = now - timedelta(days=400)
    for source in (organisation, other_organisation):
        factories.AlertFactory(patient=patient, source_organisation=source, active=False, effective_at=long_ago)
        factories.AlertFactory(patient=patient, source_organisation=source, effective_at=None)
        factories.AllergyFactory(patient=patient, source_organisation=source, clinical_status="resolved")
        factories.AllergyFactory(patient=patient, source_organisation=source, clinical_status="inactive")
        factories.ConditionFactory(patient=patient, source_organisation=source, clinical_status="resolved")
        factories.ConditionFactory(patient=patient, source_organisation=source, effective_at=None)
        for kind in ("hospital", "acute", "repeat"):
            factories.MedicationFactory(patient=patient, source_organisation=source, kind=kind, effective_at=long_ago)
        for days, status in ((10, "stopped"), (40, "completed"), (200, "stopped")):
            factories.MedicationFactory(
                patient=patient, source_organisation=source, status=status, ended_on=(now - timedelta(days)).date()
            )
        factories.LetterFactory(patient=patient, source_organisation=source, effective_at=None)
        vital = factories.ResultFactory(
            patient=patient, source_organisation=source, kind="observation", observation_category="vital-signs"
        )
        for code in ("8480-6", "8462-4"):
            factories.ObservationFactory(result=vital, code=code, reading_name="Blood pressure", source_id="bp")
    for result in Result.objects.filter(patient=patient, kind="report"):
        for code in ("718-7", "6690-2"):
            factories.ObservationFactory(result=result, patient=patient, code=code, effective_at=result.effective_at)
    undated = factories.ResultFactory(patient=patient, source_organisation=other_organisation, effective_at=None)
    factories.ObservationFactory(result=undated, code="2345-7", effective_at=None)  # only ever undated
    past_team = factories.CareTeamFactory(organisation=organisation)
    ended = factories.InvolvementFactory(patient=patient, care_team=past_team)
    Involvement.objects.filter(pk=ended.pk).update(started_at=now - timedelta(days=90), ended_at=now - timedelta(1))
    factories.SupportPersonFactory(patient=patient, source_organisation=other_organisation)
    factories.SupportPersonFactory(patient=patient, source_organisation=silent)
    return patient


@pytest.fixture
def floor(clinician, organisation):
    connection.ensure_connection()
    permission = Permission.objects.get(content_type__app_label="patients", codename="read_shared_record")
    return Floor(
        connection.connection,  # the test's own transaction: the floor sees the fixtures
        user_id=clinician.pk,
        organisation_id=organisation.pk,
        permission_id=permission.pk,
        summary_items=settings.RECORD_SUMMARY_ITEMS,
        page=settings.RECORD_PAGE_SIZE,
        stopped_months=settings.RECORD_STOPPED_MEDICATION_MONTHS,
        idle_minutes=settings.SESSION_IDLE_MINUTES,
    )


def ids(rows):
    return [row[0] for row in rows]


@pytest.mark.hazard("H-07")
def test_summary_floor_fetches_the_rows_the_summary_shows(record, clinician, floor):
    decision = decide(clinician, record)
    fetched = floor.summary(record.pk, audit=True)
    shown = sections.summary(record, decision, settings.RECORD_SUMMARY_ITEMS)
    for section in shown:
        assert ids(fetched[section.category.value]) == [e.pk for e in section.items], section.category
        assert section.items  # the fixture gives every category something to compare
    assert dict(fetched["counts"]) == {section.category.value: section.total for section in shown}
    # The current sections are shown whole: more than the newest few, as the floor fetches them.
    medications = next(s for s in shown if s.category == Category.MEDICATIONS)
    assert len(medications.items) > settings.RECORD_SUMMARY_ITEMS and medications.more
    results = next(s for s in shown if s.category == Category.RESULTS).items
    assert sorted(ids(fetched["observations"])) == sorted(o.pk for r in results for o in r.observations.all())
    assert ids(fetched["teams"]) == [i.pk for i in sections.involvements(record, decision, brief=True)]
    assert sorted(ids(fetched["support"])) == sorted(p.pk for p in sections.support_network(record, decision))


@pytest.mark.parametrize("category", [c for c in Category if c not in (Category.TEAMS, Category.RESULTS)])
def test_category_floor_fetches_the_page_list(record, clinician, floor, category):
    decision = decide(clinician, record)
    expected = [e.pk for e in sections.entries(record, decision, category)[: settings.RECORD_PAGE_SIZE]]
    assert expected and ids(floor.category(record.pk, category.value)) == expected


def test_results_floor_fetches_the_newest_of_each_test(record, clinician, floor):
    decision = decide(clinician, record)
    latest = sections.latest_by_test(record, decision)
    rows = floor.category(record.pk, Category.RESULTS.value)
    assert {row[0]: row[-1] for row in rows} == {o.pk: o.count for o in latest}
    assert len(latest) == Observation.objects.filter(patient=record).values("code").distinct().count()


def test_teams_floor_fetches_current_and_ended_involvements(record, clinician, floor):
    decision = decide(clinician, record)
    assert ids(floor.category(record.pk, Category.TEAMS.value)) == [
        i.pk for i in sections.involvements(record, decision)
    ]


@pytest.mark.hazard("H-08")
def test_summary_floor_fetches_what_arrived_since_the_last_look(record, clinician, floor, client, other_organisation):
    """The summary marks what is new since the viewer's previous visit: the floor reads the same looks and
    the same arrivals (by the (patient, received) index), and finds nothing on a first visit."""
    from django.urls import reverse

    from sharing.changes import since_last_look

    summary = reverse("record-summary", args=[record.pk])
    start = timezone.now()
    with time_machine.travel(start + timedelta(minutes=1), tick=False):
        client.force_login(clinician)
        client.get(summary)  # the previous visit, after the fixture's entries arrived
        assert floor.changes({**floor.base, "patient": record.pk}) == []  # one look: a first visit
    with time_machine.travel(start + timedelta(days=1), tick=False):
        arrived = [
            factories.ConditionFactory(patient=record, source_organisation=other_organisation),
            factories.LetterFactory(patient=record, source_organisation=other_organisation),
            factories.ConditionFactory(patient=record, source_organisation=other_organisation, sensitive=True),
        ]
    with time_machine.travel(start + timedelta(days=1, hours=1), tick=False):
        client.force_login(clinician)
        assert client.get(summary).status_code == 200  # this visit's first page
        marked = since_last_look(clinician, record, decide(clinician, record)).marks
        fetched = floor.changes({**floor.base, "patient": record.pk})
    assert {(Category(category), pk) for pk, category, _ in fetched} == set(marked)
    assert {pk for pk, _, _ in fetched} == {arrived[0].pk, arrived[1].pk}  # the sensitive one is not theirs to see
