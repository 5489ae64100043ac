"""Issue 21: the audit trail sealed in batches, and tampering by someone past the triggers found (audit/seals.py).

Tampering is done here as a database superuser or table owner could: triggers switched off (PostgreSQL's
session_replication_role, SQLite's triggers dropped), then plain SQL.
"""

import contextlib
import datetime

import pytest
from django.core.management import call_command
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.urls import reverse

from audit import seals
from audit.management.commands.flush import audit_triggers_lifted
from audit.models import AccessEvent, AuditEvent, AuditSeal
from audit.names import Action

pytestmark = [pytest.mark.django_db, pytest.mark.hazard("H-03")]


@contextlib.contextmanager
def past_the_triggers():
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET session_replication_role = replica")
        try:
            yield
        finally:
            with connection.cursor() as cursor:
                cursor.execute("SET session_replication_role = DEFAULT")
    else:
        with audit_triggers_lifted(connection):
            yield


def by_hand(sql, params=()):
    with past_the_triggers(), connection.cursor() as cursor:
        cursor.execute(sql, params)


def looks(count, **fields):
    return [
        AccessEvent.objects.create(
            user_email=f"gp{n}@example.nhs.uk", outcome="allowed", basis="care-team", page="summary", **fields
        )
        for n in range(count)
    ]


def changes(count):
    return [
        AuditEvent.objects.create(action=Action.INVOLVEMENT_STARTED, target_type="Involvement", target_id=str(n))
        for n in range(count)
    ]


def problems(report):
    return [(p.kind, p.seal_id) for p in report.problems]


def test_every_audit_column_is_in_the_current_scheme():
    """A column added to an audit table and left out of the digest would be unsealed: a new scheme is needed."""
    for table, model in seals.MODELS.items():
        columns = {f.name for f in model._meta.concrete_fields} - {"id"}
        assert set(seals.SCHEMES[seals.SCHEME][table]) == columns, table


def test_rows_are_sealed_once_in_a_chain_and_verify_intact():
    looks(3)
    changes(2)
    first = seals.seal()
    assert [(s.table, s.row_count) for s in first] == [("accessevent", 3), ("auditevent", 2)]
    assert first[0].previous == seals.GENESIS and first[1].previous == first[0].hash
    assert seals.seal() == []  # nothing new: no seal
    looks(1)
    (later,) = seals.seal()
    assert later.previous == first[1].hash and later.row_count == 1
    report = seals.verify()
    assert report.intact and report.seals == 3 and report.rows == 6, report.lines()
    assert report.head == later.hash
    assert report.unsealed_inside == {"accessevent": 0, "auditevent": 0}


def test_rows_newer_than_the_newest_seal_are_counted_not_a_problem():
    looks(2)
    seals.seal()
    looks(3)
    report = seals.verify()
    assert report.intact and report.unsealed_newest["accessevent"] == 3


def test_a_backlog_is_sealed_in_batches():
    looks(5)
    assert [s.row_count for s in seals.seal(batch_rows=2)] == [2]
    call_command("seal_audit", "--batch-rows", "2", verbosity=0)  # runs until caught up
    assert sorted(AuditSeal.objects.values_list("row_count", flat=True)) == [1, 2, 2]
    assert seals.verify().intact


def test_a_row_deleted_by_hand_is_named_by_its_id():
    rows = looks(4)
    seals.seal()
    by_hand("DELETE FROM audit_accessevent WHERE id = %s", [rows[2].pk])
    report = seals.verify()
    assert not report.intact
    (problem,) = report.problems
    assert problem.kind == "missing" and f"id {rows[2].pk}." in problem.text


def test_a_row_altered_by_hand_changes_its_batch():
    rows = looks(3)
    (sealed,) = seals.seal()
    by_hand("UPDATE audit_accessevent SET user_email = %s WHERE id = %s", ["someone-else@example.nhs.uk", rows[1].pk])
    assert problems(seals.verify()) == [("altered", sealed.pk)]


def test_a_change_to_the_detail_of_an_audit_event_is_found():
    (event,) = changes(1)
    seals.seal()
    by_hand("UPDATE audit_auditevent SET target_id = %s WHERE id = %s", ["999", event.pk])
    assert [p.kind for p in seals.verify().problems] == ["altered"]


def test_a_seal_removed_breaks_the_chain_and_one_altered_is_found():
    looks(1)
    (a,) = seals.seal()
    looks(1)
    (b,) = seals.seal()
    looks(1)
    (c,) = seals.seal()
    by_hand("DELETE FROM audit_auditseal WHERE id = %s", [b.pk])
    assert problems(seals.verify()) == [("chain", c.pk)]
    by_hand("UPDATE audit_auditseal SET row_count = 0 WHERE id = %s", [a.pk])
    assert ("seal", a.pk) in problems(seals.verify())


def test_a_row_deleted_with_its_seal_recomputed_by_hand_still_breaks_the_chain():
    """Recomputing one seal's digest after removing a row changes its hash, which the next seal holds."""
    rows = looks(2)
    (first,) = seals.seal()
    looks(1)
    seals.seal()
    by_hand("DELETE FROM audit_accessevent WHERE id = %s", [rows[0].pk])
    remaining = [(rows[1].pk, *AccessEvent.objects.values_list(*seals.SCHEMES[1]["accessevent"]).get(pk=rows[1].pk))]
    values = {
        "previous": first.previous,
        "table": "accessevent",
        "scheme": 1,
        "ranges": [[rows[1].pk, rows[1].pk]],
        "row_count": 1,
        "rows_digest": seals.digest_of(remaining),
        "sealed_at": first.sealed_at,
    }
    by_hand(
        "UPDATE audit_auditseal SET ranges = %s, row_count = 1, rows_digest = %s, first_id = %s, hash = %s "
        "WHERE id = %s",
        [f"[[{rows[1].pk}, {rows[1].pk}]]", values["rows_digest"], rows[1].pk, seals.seal_hash(**values), first.pk],
    )
    report = seals.verify()
    assert [p.kind for p in report.problems] == ["chain"], report.lines()


def test_a_row_committed_after_later_ids_were_sealed_is_sealed_by_the_next_run():
    """Ids are handed out before commit: a long transaction's row can commit after a later id was sealed."""
    AccessEvent.objects.create(id=100, outcome="allowed", basis="care-team", page="summary")
    AccessEvent.objects.create(id=102, outcome="allowed", basis="care-team", page="summary")
    (first,) = seals.seal()
    assert first.ranges == [[100, 100], [102, 102]]
    AccessEvent.objects.create(id=101, outcome="allowed", basis="care-team", page="summary")  # the straggler
    assert seals.verify().unsealed_inside["accessevent"] == 1
    (late,) = seals.seal()
    assert late.ranges == [[101, 101]] and late.row_count == 1
    report = seals.verify()
    assert report.intact and report.unsealed_inside["accessevent"] == 0 and report.rows == 3


def test_a_straggler_beyond_the_look_back_is_found_by_a_sweep(monkeypatch):
    monkeypatch.setattr(seals, "RECENT_SEALS", 1)
    AccessEvent.objects.create(id=10, outcome="allowed", basis="care-team", page="summary")
    AccessEvent.objects.create(id=12, outcome="allowed", basis="care-team", page="summary")
    seals.seal()
    AccessEvent.objects.create(id=20, outcome="allowed", basis="care-team", page="summary")
    seals.seal()
    AccessEvent.objects.create(id=11, outcome="allowed", basis="care-team", page="summary")
    assert seals.seal() == []  # under an older seal than the newest one: not looked for
    report = seals.verify()
    assert report.intact and report.unsealed_inside["accessevent"] == 1
    assert "inserted by hand" in " ".join(report.lines())
    (swept,) = seals.seal(sweep=True)
    assert swept.ranges == [[11, 11]]
    assert seals.verify().unsealed_inside["accessevent"] == 0


def test_the_chain_cannot_fork():
    looks(1)
    (head,) = seals.seal()
    values = {f.name: getattr(head, f.name) for f in AuditSeal._meta.concrete_fields if f.name != "id"}
    with pytest.raises(IntegrityError), transaction.atomic():
        AuditSeal.objects.create(**{**values, "hash": "f" * 64})


def test_seals_are_append_only():
    looks(1)
    (made,) = seals.seal()
    with pytest.raises(PermissionError):
        made.save()
    with pytest.raises(PermissionError):
        made.delete()
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM audit_auditseal WHERE id = %s", [made.pk])


def test_the_digest_reads_the_same_whatever_the_time_zone_or_key_order():
    moment = datetime.datetime(2026, 3, 29, 1, 30, tzinfo=datetime.UTC)
    london = moment.astimezone(datetime.timezone(datetime.timedelta(hours=1)))
    assert seals.row_bytes((1, moment, {"b": "1", "a": "2"})) == seals.row_bytes((1, london, {"a": "2", "b": "1"}))


def test_verify_audit_prints_exits_1_when_not_intact_and_is_audited(capsys):
    rows = looks(2)
    call_command("seal_audit", verbosity=0)
    call_command("verify_audit", "--operator", "ig-ops")
    assert "Intact" in capsys.readouterr().out
    check = AuditEvent.objects.get(action=Action.AUDIT_VERIFIED)
    assert check.actor_email == "command:verify_audit@ig-ops" and check.detail["intact"] == "True"
    by_hand("DELETE FROM audit_accessevent WHERE id = %s", [rows[0].pk])
    with pytest.raises(SystemExit) as exited:
        call_command("verify_audit", "--operator", "ig-ops")
    assert exited.value.code == 1
    out = capsys.readouterr().out
    assert "NOT INTACT" in out and f"id {rows[0].pk}." in out
    assert AuditEvent.objects.filter(action=Action.AUDIT_VERIFIED, detail__intact="False").count() == 1


def test_verify_since_starts_from_the_seal_before_that_time():
    (early,) = looks(1)
    seals.seal(now=datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC))
    looks(2)
    seals.seal(now=datetime.datetime(2026, 6, 1, tzinfo=datetime.UTC))
    march = datetime.datetime(2026, 3, 1, tzinfo=datetime.UTC)
    report = seals.verify(since=march)
    assert report.intact and report.seals == 1 and report.rows == 2
    by_hand("DELETE FROM audit_accessevent WHERE id = %s", [early.pk])  # sealed before the period
    assert seals.verify(since=march).intact
    assert problems(seals.verify())[0][0] == "missing"


@pytest.fixture
def _admin(admin_settings):
    pass


@pytest.mark.usefixtures("_admin")
def test_ig_check_the_trail_from_admin_and_the_check_is_audited(ig_client, ig_user):
    rows = looks(2)
    seals.seal()
    listing = ig_client.get(reverse("admin:audit_auditseal_changelist"))
    assert listing.status_code == 200 and reverse("admin:audit_auditseal_check").encode() in listing.content
    assert ig_client.get(reverse("admin:audit_auditseal_check")).status_code == 200
    assert not AuditEvent.objects.filter(action=Action.AUDIT_VERIFIED).exists()  # the form alone checks nothing
    page = ig_client.post(reverse("admin:audit_auditseal_check"), {"since": ""})
    assert page.status_code == 200 and b"The audit trail is intact" in page.content
    check = AuditEvent.objects.get(action=Action.AUDIT_VERIFIED)
    assert check.actor_id == ig_user.pk and check.detail["via"] == "admin" and check.detail["intact"] == "True"
    by_hand("DELETE FROM audit_accessevent WHERE id = %s", [rows[1].pk])
    page = ig_client.post(reverse("admin:audit_auditseal_check"), {"since": ""})
    assert b"NOT intact" in page.content and f"id {rows[1].pk}.".encode() in page.content


@pytest.mark.usefixtures("_admin")
def test_a_date_not_understood_is_a_field_error_and_checks_nothing(ig_client):
    page = ig_client.post(reverse("admin:audit_auditseal_check"), {"since": "last tuesday"})
    assert page.status_code == 400 and b"Enter the first day as a date" in page.content
    assert not AuditEvent.objects.filter(action=Action.AUDIT_VERIFIED).exists()


@pytest.mark.usefixtures("_admin")
def test_seals_cannot_be_added_changed_or_deleted_in_admin(ig_client, client, clinician):
    looks(1)
    made = seals.seal()[0]
    assert ig_client.get(reverse("admin:audit_auditseal_add")).status_code == 403
    assert ig_client.post(reverse("admin:audit_auditseal_delete", args=[made.pk])).status_code == 403
    client.force_login(clinician)  # no staff rights: admin's sign-in page, never the check
    assert client.get(reverse("admin:audit_auditseal_check")).status_code == 302
    client.logout()
    assert client.post(reverse("admin:audit_auditseal_check")).status_code == 302
    assert not AuditEvent.objects.filter(action=Action.AUDIT_VERIFIED).exists()


def test_the_look_back_never_reseals_a_row_an_older_seal_holds(monkeypatch):
    """A straggler's own seal can fall outside the look-back while the seal around its id is inside it."""
    monkeypatch.setattr(seals, "RECENT_SEALS", 2)
    for pk in (100, 102):
        AccessEvent.objects.create(id=pk, outcome="allowed", basis="care-team", page="summary")
    seals.seal()  # 100 and 102
    AccessEvent.objects.create(id=101, outcome="allowed", basis="care-team", page="summary")
    seals.seal()  # 101, late
    AccessEvent.objects.create(id=103, outcome="allowed", basis="care-team", page="summary")
    seals.seal()  # 103: the newest two seals by last id now hold 103 and 100/102, not 101's
    assert seals.seal() == []
    report = seals.verify()
    assert report.intact and report.rows == 4 and report.unsealed_inside["accessevent"] == 0


def test_verify_audit_refuses_a_date_it_cannot_read():
    from django.core.management import CommandError

    with pytest.raises(CommandError, match="Not a date"):
        call_command("verify_audit", "--since", "last tuesday")


def test_a_command_run_where_the_machine_names_nobody_names_no_one(monkeypatch):
    import getpass

    from audit import operators

    def nobody():
        raise KeyError("no passwd entry")

    monkeypatch.setattr(getpass, "getuser", nobody)
    assert operators.os_user() == ""
