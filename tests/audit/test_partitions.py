"""Issue 20: the audit trail partitioned by month on PostgreSQL, made ahead, append-only on every partition,
archived month by month without a delete (audit/partitions.py, audit/migrations/0006).

DDL on PostgreSQL is transactional: every partition made, converted or detached here goes with the test's
transaction."""

import datetime

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction

from audit import partitions, seals
from audit.models import AccessEvent, AuditArchive, AuditEvent
from audit.names import Action

pytestmark = [pytest.mark.django_db, pytest.mark.hazard("H-03")]
postgresql_only = pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's partitions")

TODAY = datetime.datetime.now(datetime.UTC).date()
NEXT_MONTH = partitions.next_month(partitions.month_start(TODAY))


def look(at, **fields):
    return AccessEvent.objects.create(at=at, outcome="allowed", basis="care-team", page="record:summary", **fields)


def partition_of(model, pk) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT tableoid::regclass::text FROM {model._meta.db_table} WHERE id = %s", [pk])
        return cursor.fetchone()[0]


def sql(statement, params=()):
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.fetchall() if cursor.description else None


def test_month_names_and_bounds():
    start = partitions.parse_month("2027-12")
    assert start == datetime.datetime(2027, 12, 1, tzinfo=datetime.UTC)
    assert partitions.next_month(start) == datetime.datetime(2028, 1, 1, tzinfo=datetime.UTC)
    assert partitions.months_before(start, 12) == datetime.datetime(2026, 12, 1, tzinfo=datetime.UTC)
    assert partitions.month_name("audit_accessevent", start) == "audit_accessevent_y2027m12"
    for bad in ("2027-13", "2027-1", "27-01", "2027-00"):
        with pytest.raises(ValueError, match="not a month"):
            partitions.parse_month(bad)


def test_bounds_are_utc_literals_and_the_command_refuses_a_month_that_is_not_one():
    assert partitions.bound(datetime.datetime(2027, 1, 1, tzinfo=datetime.UTC)) == "'2027-01-01T00:00:00+00:00'"
    with pytest.raises(CommandError, match="not a month"):
        call_command("audit_partitions", "--archive", "2027-13")


def test_a_partitions_bounds_are_read_from_its_name():
    table = "audit_accessevent"
    month = partitions.parse_partition(table, "audit_accessevent_y2027m12")
    assert (month.lower, month.upper, month.label) == (
        datetime.datetime(2027, 12, 1, tzinfo=datetime.UTC),
        datetime.datetime(2028, 1, 1, tzinfo=datetime.UTC),
        "2027-12",
    )
    before = partitions.parse_partition(table, "audit_accessevent_before_y2027m01")
    assert before.lower is None and before.label == "everything before 2027-01"
    default = partitions.parse_partition(table, "audit_accessevent_default")
    assert default.is_default and default.label.startswith("default")
    for stranger in ("audit_accessevent_2027", "audit_auditevent_y2027m01", "audit_accessevent_y2027m01_old"):
        with pytest.raises(RuntimeError, match="did not make"):
            partitions.parse_partition(table, stranger)


def test_months_covered_counts_whole_months_after_this_one_without_a_gap():
    table = "audit_accessevent"
    named = [
        partitions.parse_partition(table, name)
        for name in ("audit_accessevent_before_y2027m01", "audit_accessevent_y2027m01", "audit_accessevent_y2027m02")
    ]
    assert partitions.months_covered(named, datetime.date(2026, 12, 6)) == 2  # January and February
    assert partitions.months_covered(named, datetime.date(2027, 1, 31)) == 1  # February
    assert partitions.months_covered(named, datetime.date(2027, 2, 1)) == 0
    gap = [named[0], partitions.parse_partition(table, "audit_accessevent_y2027m02")]
    assert partitions.months_covered(gap, datetime.date(2026, 12, 6)) == 0  # January missing: nothing beyond counts


@postgresql_only
@pytest.mark.parametrize("table", partitions.TABLES)
def test_each_audit_table_is_partitioned_by_month_with_months_ahead_and_a_default(table):
    found = partitions.partitions(table)
    assert partitions.is_partitioned(table)
    assert found[0].lower is None and found[0].name.startswith(f"{table}_before_y")  # what was there before
    assert found[-1].is_default
    months = [p for p in found if p.lower is not None and not p.is_default]
    assert [p.lower for p in months[1:]] == [p.upper for p in months[:-1]]  # contiguous, no gap
    assert partitions.months_ahead(table) >= partitions.MONTHS_AHEAD - 1  # the migration ran this month or last


@postgresql_only
def test_a_row_goes_to_its_months_partition_and_one_no_month_covers_to_the_default():
    this_month, next_month, far = (
        look(datetime.datetime.now(datetime.UTC)),
        look(NEXT_MONTH),
        look(datetime.datetime(2199, 5, 1, tzinfo=datetime.UTC)),
    )
    assert partition_of(AccessEvent, next_month.pk) == partitions.month_name("audit_accessevent", NEXT_MONTH)
    assert partition_of(AccessEvent, far.pk) == "audit_accessevent_default"
    assert partition_of(AccessEvent, this_month.pk).startswith("audit_accessevent_")
    # Nothing changes for the app: one table, ids in order, read and filtered as before.
    assert list(AccessEvent.objects.order_by("pk").values_list("pk", flat=True)) == [
        this_month.pk,
        next_month.pk,
        far.pk,
    ]
    assert AccessEvent.objects.get(pk=far.pk).at.year == 2199


@postgresql_only
@pytest.mark.parametrize(
    "statement", ["UPDATE {p} SET page = 'x'", "DELETE FROM {p}", "TRUNCATE {p}"], ids=["update", "delete", "truncate"]
)
def test_every_partition_refuses_update_delete_and_truncate(statement):
    """The row trigger PostgreSQL clones, the TRUNCATE trigger partitions.protect() adds (to new ones too)."""
    made = partitions.ensure(today=partitions.months_before(NEXT_MONTH, -8).date(), ahead=0)
    assert made.created  # a new partition, made now, is protected like the others
    for partition in partitions.partitions("audit_accessevent"):
        at = partition.lower or datetime.datetime(2000 if partition.upper else 2199, 1, 1, tzinfo=datetime.UTC)
        assert partition_of(AccessEvent, look(at).pk) == partition.name
        with pytest.raises(DatabaseError, match=r"append-only|Cannot update or delete"):
            sql(statement.format(p=partition.name))
    assert AccessEvent.objects.count() == len(partitions.partitions("audit_accessevent"))


@postgresql_only
def test_ensure_makes_the_coming_months_once_and_grants_nobody_a_partition():
    later = partitions.months_before(NEXT_MONTH, -10).date()  # ten months on: the job "stopped" since
    made = partitions.ensure(today=later, ahead=2)
    assert len(made.created) == 2 * 3 and not made.blocked  # two tables, that month and two ahead
    assert partitions.ensure(today=later, ahead=2).created == []  # idempotent: run it daily
    assert partitions.months_ahead("audit_accessevent", today=later) == 2
    newest = partitions.month_name("audit_accessevent", partitions.months_before(NEXT_MONTH, -12))
    assert newest in made.created
    [(acl,)] = sql("SELECT relacl::text FROM pg_class WHERE relname = %s", [newest])
    assert acl is None or acl.count("=") == 1  # the owner's own entry at most: reads and writes go via the parent


@postgresql_only
def test_a_month_whose_rows_sit_in_the_default_is_reported_not_made_and_loses_nothing():
    stray = look(datetime.datetime(2199, 5, 3, tzinfo=datetime.UTC))
    made = partitions.ensure(today=datetime.date(2199, 4, 20), ahead=2)
    assert made.blocked == ["audit_accessevent_y2199m05"]
    assert "audit_accessevent_y2199m04" in made.created and "audit_accessevent_y2199m06" in made.created
    assert "audit_auditevent_y2199m05" in made.created  # the other table has no stray row
    assert partition_of(AccessEvent, stray.pk) == "audit_accessevent_default"


@postgresql_only
def test_the_command_makes_lists_and_exits_1_when_a_month_is_blocked(capsys):
    call_command("audit_partitions", "--list")
    out = capsys.readouterr().out
    assert "audit_accessevent_default" in out and "audit_auditevent:" in out and "months made ahead" in out
    call_command("audit_partitions", "--ahead", "1")
    assert "already has its partition" in capsys.readouterr().out
    call_command("audit_partitions", "--ahead", str(partitions.MONTHS_AHEAD + 1))
    assert "Made audit_accessevent_y" in capsys.readouterr().out
    far_ahead = partitions.months_before(partitions.month_start(TODAY), -(partitions.MONTHS_AHEAD + 3))
    look(far_ahead)  # to the default: no partition that far ahead yet
    with pytest.raises(SystemExit) as exit_:
        call_command("audit_partitions", "--ahead", str(partitions.MONTHS_AHEAD + 3))
    assert exit_.value.code == 1 and "Not made audit_accessevent_y" in capsys.readouterr().err


@pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's plain tables")
def test_sqlite_keeps_plain_tables(capsys):
    assert not partitions.is_partitioned("audit_accessevent") and partitions.partitions("audit_accessevent") == []
    assert partitions.ensure().created == []
    call_command("audit_partitions")
    assert "not partitioned" in capsys.readouterr().out


@postgresql_only
def test_convert_partitions_a_plain_table_keeping_every_row_id_index_and_trigger():
    """What 0006 did to the audit tables, on a table of the same shape made here."""
    sql(
        "CREATE TABLE audit_drillevent (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, "
        "at timestamptz NOT NULL, note text NOT NULL DEFAULT 'none')"
    )
    sql("CREATE INDEX drillevent_note ON audit_drillevent (note, at DESC)")
    sql(
        "CREATE FUNCTION drill_refuse() RETURNS trigger LANGUAGE plpgsql "
        "AS $$ BEGIN RAISE EXCEPTION 'append-only'; END $$"
    )
    sql("CREATE TRIGGER drill_no_update BEFORE UPDATE ON audit_drillevent FOR EACH ROW EXECUTE FUNCTION drill_refuse()")
    sql("CREATE TRIGGER drill_no_truncate BEFORE TRUNCATE ON audit_drillevent EXECUTE FUNCTION drill_refuse()")
    sql("INSERT INTO audit_drillevent (at) SELECT now() - g * interval '40 days' FROM generate_series(1, 20) g")
    before = sql("SELECT id, at, note FROM audit_drillevent ORDER BY id")

    with connection.cursor() as cursor:
        partitions.convert("audit_drillevent", today=TODAY, ahead=2, cursor=cursor)

    assert sql("SELECT id, at, note FROM audit_drillevent ORDER BY id") == before
    names = [p.name for p in partitions.partitions("audit_drillevent")]
    assert names[0] == f"audit_drillevent_before_y{NEXT_MONTH:%Y}m{NEXT_MONTH:%m}" and len(names) == 4
    [(new_id,)] = sql("INSERT INTO audit_drillevent (at) VALUES (%s) RETURNING id", [NEXT_MONTH])
    assert new_id == before[-1][0] + 1  # the identity carries on
    assert sql("SELECT indexname FROM pg_indexes WHERE tablename = 'audit_drillevent' ORDER BY 1") == [
        ("audit_drillevent_pkey",),
        ("drillevent_note",),
    ]
    for statement in ("UPDATE audit_drillevent SET note = 'x'", f"TRUNCATE {names[1]}", f"TRUNCATE {names[0]}"):
        with pytest.raises(DatabaseError, match="append-only"):
            sql(statement)


def _archivable_month():
    """Rows in next month's partition, archived as if two years and a month had passed."""
    rows = [look(NEXT_MONTH + datetime.timedelta(hours=n), user_email=f"gp{n}@example.nhs.uk") for n in range(5)]
    later = partitions.months_before(NEXT_MONTH, -25).date()
    return rows, later


@postgresql_only
def test_archiving_a_month_checks_its_seals_records_it_and_detaches_it_keeping_every_row():
    rows, later = _archivable_month()
    other = look(datetime.datetime.now(datetime.UTC))
    record = partitions.archive("accessevent", NEXT_MONTH, by="command:test@ig", online_months=24, today=later)

    name = partitions.month_name("audit_accessevent", NEXT_MONTH)
    assert record.partition == name and record.row_count == 5 and record.ranges == [[rows[0].pk, rows[-1].pk]]
    assert name not in [p.name for p in partitions.partitions("audit_accessevent")]
    assert list(AccessEvent.objects.values_list("pk", flat=True)) == [other.pk]  # off the live trail ...
    assert [pk for (pk,) in sql(f"SELECT id FROM {name} ORDER BY id")] == [r.pk for r in rows]  # ... not deleted
    kept = seals.digest_of(sql(f"SELECT id, {', '.join(seals.SCHEMES[1]['accessevent'])} FROM {name} ORDER BY id"))
    assert kept == record.rows_digest  # a restored dump can be checked against what left
    event = AuditEvent.objects.get(action=Action.AUDIT_ARCHIVED)
    assert event.actor_email == "command:test@ig" and event.detail["partition"] == name
    with pytest.raises(DatabaseError, match="Cannot update or delete"):
        sql(f"DELETE FROM {name}")  # the detached table keeps its triggers until the owner drops it

    report = seals.verify()
    assert report.intact, report.lines()
    assert report.archived == 5 and any("5 sealed rows are archived" in line for line in report.lines())


@postgresql_only
def test_a_row_removed_from_a_month_before_archiving_refuses_the_archive():
    rows, later = _archivable_month()
    seals.seal()
    with connection.cursor() as cursor:
        cursor.execute("SET session_replication_role = replica")
        cursor.execute("DELETE FROM audit_accessevent WHERE id = %s", [rows[2].pk])
        cursor.execute("SET session_replication_role = DEFAULT")
    with pytest.raises(partitions.ArchiveRefused, match=f"gone: id {rows[2].pk}"):
        partitions.archive("accessevent", NEXT_MONTH, by="command:test", online_months=24, today=later)
    assert not AuditArchive.objects.exists()
    assert partitions.month_name("audit_accessevent", NEXT_MONTH) in [
        p.name for p in partitions.partitions("audit_accessevent")
    ]


@postgresql_only
def test_a_month_inside_the_online_period_or_not_a_partition_is_not_archived(capsys):
    _archivable_month()
    with pytest.raises(partitions.ArchiveRefused, match="within the 24 months kept online"):
        partitions.archive("accessevent", NEXT_MONTH, by="t", online_months=24, today=TODAY)
    with pytest.raises(partitions.ArchiveRefused, match="is not a partition"):
        partitions.archive("accessevent", datetime.datetime(1999, 1, 1, tzinfo=datetime.UTC), by="t", online_months=0)
    with pytest.raises(SystemExit):
        call_command("audit_partitions", "--archive", f"{NEXT_MONTH:%Y-%m}", "--table", "accessevent")
    assert "kept online" in capsys.readouterr().err
    assert AccessEvent.objects.count() == 5 and not AuditArchive.objects.exists()


@postgresql_only
def test_a_row_removed_after_its_month_was_archived_elsewhere_is_still_found():
    """Archived ids excuse only themselves: a row gone from the live trail is still named."""
    _, later = _archivable_month()
    gone = look(datetime.datetime.now(datetime.UTC))
    partitions.archive("accessevent", NEXT_MONTH, by="t", online_months=24, today=later)
    with connection.cursor() as cursor:
        cursor.execute("SET session_replication_role = replica")
        cursor.execute("DELETE FROM audit_accessevent WHERE id = %s", [gone.pk])
        cursor.execute("SET session_replication_role = DEFAULT")
    report = seals.verify()
    assert [p.kind for p in report.problems] == ["missing"] and f"id {gone.pk}" in report.problems[0].text


@postgresql_only
def test_an_archived_month_attached_again_as_the_runbook_says_verifies_in_full():
    """docs/ops/audit-partitions.md, "Restoring an archived month" (the dump and restore aside)."""
    rows, later = _archivable_month()
    record = partitions.archive("accessevent", NEXT_MONTH, by="t", online_months=24, today=later)
    trigger = next(t.get_pgid(AccessEvent) for t in AccessEvent._meta.triggers if t.name.endswith("_append_only"))
    upper = partitions.next_month(NEXT_MONTH)
    sql(f"DROP TRIGGER {trigger} ON {record.partition}")
    sql(
        f"ALTER TABLE audit_accessevent ATTACH PARTITION {record.partition} "
        f"FOR VALUES FROM ({partitions.bound(NEXT_MONTH)}) TO ({partitions.bound(upper)})"
    )
    assert AccessEvent.objects.filter(pk__in=[r.pk for r in rows]).count() == 5
    report = seals.verify()
    assert report.intact and report.archived == 0  # every row back: each seal's digest checked again
    with pytest.raises(DatabaseError, match="Cannot update or delete"):
        sql(f"UPDATE {record.partition} SET page = 'x'")
