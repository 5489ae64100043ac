"""Issue 20: the sharing agreements in force read on the primary, once per decision, as values; on PostgreSQL a
per-process copy kept by a version a database trigger moves on every change (sharing/agreements.py).

These tests keep the copy (`agreements_cache`); the rest of the suite reads the agreements per decision."""

import datetime

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from patients.categories import Category
from sharing import agreements
from sharing.access import decide
from sharing.models import AgreementsVersion, SharingAgreement
from sharing.record import entries
from tests import factories

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.agreements_cache,
    pytest.mark.hazard("H-02"),
    pytest.mark.hazard("H-03"),
]
postgresql_only = pytest.mark.skipif(connection.vendor != "postgresql", reason="the trigger-kept version")


def version():
    return AgreementsVersion.objects.get(pk=AgreementsVersion.ROW).version


def agreement_reads(captured) -> int:
    return sum('FROM "sharing_sharingagreement"' in query["sql"] for query in captured)


@postgresql_only
@pytest.mark.parametrize(
    "change",
    [
        "INSERT INTO sharing_sharingagreement (organisation_id, category, shares, since, updated_at) "
        "SELECT id, 'letters', true, now(), now() FROM directory_organisation WHERE name = 'Shares nothing'",
        "UPDATE sharing_sharingagreement SET shares = NOT shares",
        "DELETE FROM sharing_sharingagreement",
        "SET CONSTRAINTS ALL IMMEDIATE; TRUNCATE sharing_sharingagreement",
    ],
    ids=["insert", "update", "delete", "truncate"],
)
def test_every_kind_of_change_by_anyone_moves_the_version(organisation, change):
    factories.OrganisationFactory(name="Shares nothing", shares=[])
    before = version()
    with connection.cursor() as cursor:
        cursor.execute(change)
    assert version() > before


@postgresql_only
def test_a_change_rolled_back_never_gives_its_version_to_another_state(organisation):
    before = version()
    with pytest.raises(RuntimeError), transaction.atomic():
        SharingAgreement.objects.filter(organisation=organisation).update(shares=False)
        rolled_back = version()
        raise RuntimeError
    assert version() == before
    SharingAgreement.objects.filter(organisation=organisation, category=Category.ALERTS).delete()
    assert version() not in (before, rolled_back)


@postgresql_only
def test_the_copy_is_read_once_per_version_and_again_after_a_change(organisation, other_organisation):
    with CaptureQueriesContext(connection) as first:
        shared = agreements.in_force(version())
    with CaptureQueriesContext(connection) as second:
        assert agreements.in_force(version()) is shared
    assert agreement_reads(first) == 1 and agreement_reads(second) == 0
    assert other_organisation.pk in shared[Category.LETTERS.value]
    SharingAgreement.objects.filter(organisation=other_organisation, category=Category.LETTERS).update(shares=False)
    assert other_organisation.pk not in agreements.in_force(version())[Category.LETTERS.value]


@postgresql_only
def test_an_agreement_starting_tomorrow_is_in_force_tomorrow_with_no_change_at_all(time_machine, other_organisation):
    SharingAgreement.objects.filter(organisation=other_organisation, category=Category.LETTERS).update(
        since=datetime.date(2027, 3, 2)
    )
    time_machine.move_to(datetime.datetime(2027, 3, 1, 12, tzinfo=datetime.UTC))
    assert other_organisation.pk not in agreements.in_force(version()).get(Category.LETTERS.value, ())
    time_machine.move_to(datetime.datetime(2027, 3, 2, 12, tzinfo=datetime.UTC))
    assert other_organisation.pk in agreements.in_force(version())[Category.LETTERS.value]


def test_without_a_version_they_are_read_every_time(organisation):
    with CaptureQueriesContext(connection) as captured:
        agreements.in_force(None)
        agreements.in_force(None)
    assert agreement_reads(captured) == 2


def test_the_decision_carries_the_version_and_reads_the_agreements_once(clinician, patient, other_organisation):
    factories.ConditionFactory(patient=patient, source_organisation=other_organisation)
    factories.LetterFactory(patient=patient, source_organisation=other_organisation)
    decision = decide(clinician, patient)
    assert decision.agreements_version == (version() if connection.vendor == "postgresql" else None)
    with CaptureQueriesContext(connection) as captured:
        assert entries(patient, decision, Category.CONDITIONS).count() == 1
        assert entries(patient, decision, Category.LETTERS).count() == 1
    assert agreement_reads(captured) == 1
    # The entry queries hold the organisations as values: no subquery on the agreements (they may run on a replica).
    assert all("sharing_sharingagreement" not in query["sql"] for query in captured if "patients_" in query["sql"])


def test_an_agreement_that_stops_sharing_narrows_the_very_next_page(client, clinician, patient, other_organisation):
    factories.ConditionFactory(patient=patient, source_organisation=other_organisation, name="Asthma")
    client.force_login(clinician)
    url = reverse(f"record-{Category.CONDITIONS.value}", args=[patient.pk])
    assert "Asthma" in client.get(url).content.decode()
    agreement = SharingAgreement.objects.get(organisation=other_organisation, category=Category.CONDITIONS)
    agreement.shares = False
    agreement.save()
    assert "Asthma" not in client.get(url).content.decode()
