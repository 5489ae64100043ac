"""optout 0003: "decided" belongs to the decision only. Cases verified before it had decided_by/at written at
verify; the migration moves who verified and when to their own fields, from the case's audit row."""

import datetime

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from tests import factories

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.hazard("H-02")]

BEFORE, AFTER = [("optout", "0002_more_of_the_record")], [("optout", "0003_verified_apart_from_decided")]


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    executor.loader.build_graph()
    return executor._create_project_state(with_applied_migrations=True).apps  # every app, as migrated now


def test_finding_decided_set_at_verify_is_moved_to_verified_and_a_real_decision_kept(ig_user):
    apps = migrate(BEFORE)
    Objection, AuditEvent = apps.get_model("optout", "Objection"), apps.get_model("audit", "AuditEvent")
    verified_at = datetime.datetime(2026, 11, 2, 9, 30, tzinfo=datetime.UTC)
    decided_at = datetime.datetime(2026, 11, 5, 14, 0, tzinfo=datetime.UTC)
    common = {"given_name": "Ada", "family_name": "Test", "date_of_birth": datetime.date(1970, 1, 1)}
    common |= {"postcode": "SW91NQ", "region": "SEL", "source": "web-form"}
    waiting = Objection.objects.create(
        reference="OPT-WAITING1", status="verified", decided_by_id=ig_user.pk, decided_at=verified_at, **common
    )
    upheld = Objection.objects.create(
        reference="OPT-UPHELD01", status="upheld", decided_by_id=ig_user.pk, decided_at=decided_at, **common
    )
    for case in (waiting, upheld):
        AuditEvent.objects.create(
            at=verified_at,
            actor_id=ig_user.pk,
            actor_email=ig_user.email,
            action="objection.verified",
            target_type="Objection",
            target_id=str(case.pk),
        )

    apps = migrate(AFTER)
    Objection = apps.get_model("optout", "Objection")
    waiting, upheld = Objection.objects.get(pk=waiting.pk), Objection.objects.get(pk=upheld.pk)
    assert (waiting.verified_by_id, waiting.verified_at, waiting.decided_by_id, waiting.decided_at) == (
        ig_user.pk,
        verified_at,
        None,
        None,
    )
    assert (upheld.verified_by_id, upheld.verified_at, upheld.decided_by_id, upheld.decided_at) == (
        ig_user.pk,
        verified_at,
        ig_user.pk,
        decided_at,
    )


def test_a_verifier_whose_account_is_gone_leaves_the_time_and_no_dangling_link():
    apps = migrate(BEFORE)
    Objection, AuditEvent = apps.get_model("optout", "Objection"), apps.get_model("audit", "AuditEvent")
    case = Objection.objects.create(
        reference="OPT-GONE0001",
        status="verified",
        given_name="Ada",
        family_name="Test",
        date_of_birth=datetime.date(1970, 1, 1),
        postcode="SW91NQ",
        region="SEL",
        source="web-form",
    )
    at = datetime.datetime(2026, 11, 2, 9, 30, tzinfo=datetime.UTC)
    AuditEvent.objects.create(
        at=at,
        actor_id=987654,
        actor_email="gone@test.carerecord.test",
        action="objection.verified",
        target_type="Objection",
        target_id=str(case.pk),
    )
    apps = migrate(AFTER)
    case = apps.get_model("optout", "Objection").objects.get(pk=case.pk)
    assert (case.verified_by_id, case.verified_at) == (None, at)
    factories.UserFactory()  # the database is usable after the migration
