"""The audit trail partitioned by month on PostgreSQL: AccessEvent and AuditEvent grow by millions of rows a day
in a city, and a month is the unit that is made ahead, sealed, archived and restored.

Each table is a range-partitioned parent (audit/migrations/0006) with:
- `<table>_before_yYYYYmMM`: everything written before the month it names (the table as it was when
  partitioning was introduced, attached whole, so the migration copies nothing);
- `<table>_yYYYYmMM`: one per calendar month (UTC bounds, so a partition never depends on the server's
  timezone or on daylight saving), made ahead of time by `manage.py audit_partitions`;
- `<table>_default`: catches a row no month partition covers (the scheduled job did not run, or a clock far
  ahead), so an audit row is never refused. It should stay empty: the metrics endpoint exports its row count and
  how many months are made ahead, and docs/ops/prometheus-rules.yml alerts on either.

Bounds are read from the partitions' names, which this module alone makes. The append-only row trigger is
declared on the parent and PostgreSQL clones it to every partition; the TRUNCATE trigger is a statement trigger,
which PostgreSQL does not clone, so each partition gets its own (same name and function, so Django's test flush
lifts them with the parent's). A new partition grants nobody anything: inserts and reads go through the parent,
whose privileges alone are checked, so the app role cannot touch a partition directly.

SQLite (development) keeps plain tables: every function here does nothing there.
"""

import datetime
import re
from dataclasses import dataclass

from django.db import connection as default_connection
from django.db import transaction
from django.db.models import Q

from . import seals
from .models import AuditArchive, AuditEvent
from .names import Action

TABLES = ("audit_accessevent", "audit_auditevent")
MONTHS_AHEAD = 3  # months made ahead of the current one: a quarter's grace if the scheduled job stops
NAME = re.compile(r"^(?P<table>audit_[a-z]+?)_(?:(?P<before>before_)?y(?P<year>\d{4})m(?P<month>\d{2})|default)$")


EARLIEST = datetime.datetime.min.replace(tzinfo=datetime.UTC)


def bound(moment: datetime.datetime) -> str:
    """A partition bound as SQL: DDL takes no parameters, and these are our own UTC datetimes."""
    return f"'{moment.astimezone(datetime.UTC).isoformat()}'"


def month_start(day: datetime.date) -> datetime.datetime:
    return datetime.datetime(day.year, day.month, 1, tzinfo=datetime.UTC)


def next_month(start: datetime.datetime) -> datetime.datetime:
    return start.replace(year=start.year + start.month // 12, month=start.month % 12 + 1)


def month_name(table: str, start: datetime.datetime) -> str:
    return f"{table}_y{start:%Y}m{start:%m}"


def parse_month(text: str) -> datetime.datetime:
    """'2027-01' → the month's start (UTC); ValueError otherwise."""
    if not re.fullmatch(r"\d{4}-\d{2}", text):
        raise ValueError(f"{text!r} is not a month (YYYY-MM).")
    year, month = (int(part) for part in text.split("-"))
    if not 1 <= month <= 12:
        raise ValueError(f"{text!r} is not a month (YYYY-MM).")
    return datetime.datetime(year, month, 1, tzinfo=datetime.UTC)


@dataclass(frozen=True)
class Partition:
    name: str
    table: str
    lower: datetime.datetime | None  # None: from the beginning
    upper: datetime.datetime | None  # None: the default partition

    @property
    def is_default(self) -> bool:
        return self.upper is None

    @property
    def label(self) -> str:
        if self.is_default:
            return "default (rows no month covers)"
        if self.lower is None:
            return f"everything before {self.upper:%Y-%m}"
        return f"{self.lower:%Y-%m}"


def is_partitioned(table: str, connection=default_connection) -> bool:
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:  # pragma: postgresql only
        cursor.execute("SELECT relkind FROM pg_class WHERE oid = to_regclass(%s)", [table])
        row = cursor.fetchone()
        return bool(row) and row[0] == "p"


def partitions(table: str, connection=default_connection) -> list[Partition]:
    """The table's partitions, oldest first, the default last."""
    if not is_partitioned(table, connection):
        return []
    found = [parse_partition(table, name) for name in _partition_names(table, connection)]
    return sorted(found, key=lambda p: (p.is_default, p.lower or EARLIEST))


def _partition_names(table: str, connection) -> list[str]:  # pragma: postgresql only
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = to_regclass(%s)",
            [table],
        )
        return [name for (name,) in cursor.fetchall()]


def parse_partition(table: str, name: str) -> Partition:
    """A partition's bounds, from the name this module gave it."""
    match = NAME.match(name)
    if not match or match["table"] != table:
        raise RuntimeError(f"{name} is a partition of {table} that audit/partitions.py did not make.")
    if match["year"] is None:
        return Partition(name, table, None, None)
    start = datetime.datetime(int(match["year"]), int(match["month"]), 1, tzinfo=datetime.UTC)
    return Partition(name, table, None, start) if match["before"] else Partition(name, table, start, next_month(start))


def truncate_triggers(table: str, cursor) -> list[tuple[str, str]]:  # pragma: postgresql only
    """The parent's statement-level TRUNCATE triggers: (name, function), to repeat on each partition."""
    cursor.execute(
        "SELECT t.tgname, p.proname FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid "
        "WHERE t.tgrelid = to_regclass(%s) AND NOT t.tgisinternal AND (t.tgtype & 32) <> 0",
        [table],
    )
    return cursor.fetchall()


def protect(partition: str, table: str, cursor) -> None:  # pragma: postgresql only
    """What a partition needs beyond what PostgreSQL gives it: the TRUNCATE trigger, and no privileges."""
    for trigger, function in truncate_triggers(table, cursor):
        cursor.execute(
            f'CREATE TRIGGER "{trigger}" BEFORE TRUNCATE ON "{partition}" '
            f'FOR EACH STATEMENT EXECUTE FUNCTION "{function}"()'
        )
    # Whatever default privileges gave at creation, taken away: all access goes through the parent.
    cursor.execute(
        "SELECT DISTINCT r.rolname FROM pg_class c, aclexplode(c.relacl) a JOIN pg_roles r ON r.oid = a.grantee "
        "WHERE c.oid = to_regclass(%s) AND a.grantee <> c.relowner",
        [partition],
    )
    for (role,) in cursor.fetchall():
        cursor.execute(f'REVOKE ALL ON "{partition}" FROM "{role}"')


def create_month(table: str, start: datetime.datetime, cursor) -> str:  # pragma: postgresql only
    name = month_name(table, start)
    cursor.execute(
        f'CREATE TABLE "{name}" PARTITION OF "{table}" FOR VALUES FROM ({bound(start)}) TO ({bound(next_month(start))})'
    )
    protect(name, table, cursor)
    return name


def default_rows(  # pragma: postgresql only
    table: str, cursor, *, month: datetime.datetime | None = None, cap: int = 10_000
) -> int:
    """Rows in the table's default partition (of one month, when given), counted up to `cap`: the metric and the
    check before a month is made need only whether there are any and roughly how many."""
    where, params = "", []
    if month is not None:
        where, params = "WHERE at >= %s AND at < %s", [month, next_month(month)]
    # Table names here are TABLES' own, never input.
    cursor.execute(
        f'SELECT count(*) FROM (SELECT 1 FROM "{table}_default" {where} LIMIT %s) AS rows',  # noqa: S608
        [*params, cap],
    )
    return cursor.fetchone()[0]


@dataclass
class Made:
    created: list[str]
    blocked: list[str]  # months whose rows already sit in the default partition (see docs/ops/audit-partitions.md)


def ensure(*, today: datetime.date | None = None, ahead: int = MONTHS_AHEAD, connection=default_connection) -> Made:
    """Make the month partitions from the current month to `ahead` months after it (idempotent: run it daily).

    A month whose rows already sit in the default partition is not made (PostgreSQL would refuse: those rows
    belong to it) and is reported instead; the rows stay where they are, readable and sealed, and the months
    after it are still made."""
    made = Made([], [])
    today = today or datetime.datetime.now(datetime.UTC).date()
    for table in TABLES:
        existing = partitions(table, connection)
        if existing:
            _ensure_table(table, existing, month_start(today), ahead, made, connection)
    return made


def _ensure_table(table, existing, start, ahead: int, made: Made, connection) -> None:  # pragma: postgresql only
    covered_until = max((p.upper for p in existing if not p.is_default), default=None)
    with connection.cursor() as cursor:
        for _ in range(ahead + 1):
            end = next_month(start)
            if covered_until is None or start >= covered_until:
                name = month_name(table, start)
                if default_rows(table, cursor, month=start, cap=1):
                    made.blocked.append(name)
                else:
                    made.created.append(create_month(table, start, cursor))
            start = end


def months_ahead(table: str, *, today: datetime.date | None = None, connection=default_connection) -> int | None:
    """Whole months covered by month partitions after the current one (None: not partitioned)."""
    existing = [p for p in partitions(table, connection) if not p.is_default]
    if not existing:
        return None
    return months_covered(existing, today or datetime.datetime.now(datetime.UTC).date())


def months_covered(existing: list[Partition], today: datetime.date) -> int:
    """Whole months after the current one that these (non-default) partitions cover, without a gap."""
    start, count = next_month(month_start(today)), 0
    covered = {p.lower for p in existing if p.lower is not None}
    history_until = max((p.upper for p in existing if p.lower is None), default=None)
    while start in covered or (history_until is not None and next_month(start) <= history_until):
        count += 1
        start = next_month(start)
    return count


def convert(table: str, *, today: datetime.date, ahead: int, cursor) -> None:  # pragma: postgresql only
    """Turn a plain audit table into a partitioned one without copying a row (audit/migrations/0006).

    The table becomes the partition of everything before next month; a new parent takes its name, columns,
    defaults, identity (continuing from the same id), indexes (PostgreSQL adopts the old table's matching
    ones, so none is rebuilt but the primary key, which must include the partition key) and triggers."""
    history_until = next_month(month_start(today))
    history = f"{table}_before_y{history_until:%Y}m{history_until:%m}"
    cursor.execute(
        "SELECT pg_get_indexdef(indexrelid) FROM pg_index WHERE indrelid = to_regclass(%s) AND NOT indisprimary",
        [table],
    )
    index_definitions = [definition for (definition,) in cursor.fetchall()]
    cursor.execute(
        "SELECT tgname, pg_get_triggerdef(oid) FROM pg_trigger WHERE tgrelid = to_regclass(%s) AND NOT tgisinternal",
        [table],
    )
    triggers = cursor.fetchall()
    cursor.execute("SELECT conname FROM pg_constraint WHERE conrelid = to_regclass(%s) AND contype = 'p'", [table])
    (primary_key,) = cursor.fetchone()
    cursor.execute(f'SELECT coalesce(max(id), 0) FROM "{table}"')  # noqa: S608
    (highest,) = cursor.fetchone()

    for name, _ in triggers:
        cursor.execute(f'DROP TRIGGER "{name}" ON "{table}"')
    cursor.execute(f'ALTER TABLE "{table}" RENAME TO "{history}"')
    cursor.execute(
        "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = to_regclass(%s)",
        [history],
    )
    for (index,) in cursor.fetchall():
        cursor.execute(f'ALTER INDEX "{index}" RENAME TO "{index[:50]}_{history_until:%Y%m}"')
    cursor.execute(f'ALTER TABLE "{history}" ALTER COLUMN id DROP IDENTITY')
    # A partitioned table's primary key must include the partition key: (id, at) instead of (id).
    history_key = f"{primary_key[:50]}_{history_until:%Y%m}"
    cursor.execute(
        f'ALTER TABLE "{history}" DROP CONSTRAINT "{history_key}", ADD CONSTRAINT "{history_key}" PRIMARY KEY (id, at)'
    )

    cursor.execute(
        f'CREATE TABLE "{table}" (LIKE "{history}" INCLUDING DEFAULTS INCLUDING STORAGE INCLUDING COMMENTS) '
        "PARTITION BY RANGE (at)"
    )
    cursor.execute(
        f'ALTER TABLE "{table}" ALTER COLUMN id ADD GENERATED BY DEFAULT AS IDENTITY (START WITH {highest + 1})'
    )
    cursor.execute(f'ALTER TABLE "{table}" ADD CONSTRAINT "{primary_key}" PRIMARY KEY (id, at)')
    for definition in index_definitions:
        cursor.execute(definition)
    cursor.execute(
        f'ALTER TABLE "{table}" ATTACH PARTITION "{history}" FOR VALUES FROM (MINVALUE) TO ({bound(history_until)})'
    )
    cursor.execute(f'CREATE TABLE "{table}_default" PARTITION OF "{table}" DEFAULT')
    for _, definition in triggers:
        cursor.execute(definition)  # row triggers are cloned to every partition, statement triggers are not
    for partition in (history, f"{table}_default"):
        protect(partition, table, cursor)
    start = history_until
    for _ in range(ahead):
        create_month(table, start, cursor)
        start = next_month(start)


class ArchiveRefused(Exception):
    """The month cannot leave the live trail yet; the message says why and what to do."""


def months_before(start: datetime.datetime, count: int) -> datetime.datetime:
    index = start.year * 12 + start.month - 1 - count
    return start.replace(year=index // 12, month=index % 12 + 1)


def archive(  # pragma: postgresql only
    short_table: str,
    month: datetime.datetime,
    *,
    by: str,
    online_months: int,
    today: datetime.date | None = None,
    connection=default_connection,
) -> AuditArchive:
    """Take one month of an audit table off the live trail: its rows sealed and their seals checked, what leaves
    recorded (AuditArchive, with the exact ids and a digest), and its partition detached — in one transaction,
    with the partition locked against inserts meanwhile. The detached table keeps every row and its triggers; the
    operator dumps it and drops it as the owner (docs/ops/audit-partitions.md). Reads the month's rows twice."""
    table = f"audit_{short_table}"
    if short_table not in seals.MODELS or not is_partitioned(table, connection):
        raise ArchiveRefused(f"{table} is not partitioned here (PostgreSQL only): there is nothing to detach.")
    name = month_name(table, month)
    if name not in {p.name for p in partitions(table, connection)}:
        raise ArchiveRefused(f"{name} is not a partition of {table} (audit_partitions --list shows them).")
    today = today or datetime.datetime.now(datetime.UTC).date()
    if next_month(month) > months_before(month_start(today), online_months):
        raise ArchiveRefused(
            f"{month:%Y-%m} is within the {online_months} months kept online (AUDIT_ONLINE_MONTHS): not archived."
        )
    seals.seal(sweep=True)  # stragglers under every seal, once
    for _ in range(10_000):  # then a backlog of new rows, BATCH_ROWS at a time
        if not seals.seal():
            break
    end = next_month(month)
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        cursor.execute(f'LOCK TABLE "{name}" IN SHARE MODE')
        cursor.execute(f'SELECT min(id), max(id), count(*) FROM "{name}"')  # noqa: S608 (our own name)
        low, high, count = cursor.fetchone()
        report, covered = seals.check_before_archive(short_table, low or 0, high or 0)
        ids, unsealed = [], 0

        def month_rows():
            nonlocal unsealed
            wanted = Q(at__gte=month, at__lt=end)
            for row in seals.rows_of(short_table, seals.SCHEME, wanted).iterator(chunk_size=5_000):
                if ids and row[0] == ids[-1][1] + 1:
                    ids[-1][1] = row[0]
                else:
                    ids.append([row[0], row[0]])
                unsealed += row[0] not in covered
                yield row

        digest = seals.digest_of(month_rows())
        if not report.intact or unsealed:
            problems = [line for line in report.lines() if line.startswith("PROBLEM")]
            if unsealed:
                problems.append(f"{unsealed:,} of its rows are under no seal: run seal_audit --sweep, then again.")
            raise ArchiveRefused(f"{name} was not archived: " + " ".join(problems))
        record = AuditArchive.objects.create(
            table=short_table,
            partition=name,
            month=month.date(),
            scheme=seals.SCHEME,
            ranges=ids,
            row_count=count,
            rows_digest=digest,
            archived_by=by,
        )
        AuditEvent.objects.create(
            actor_email=by,
            action=Action.AUDIT_ARCHIVED,
            target_type="AuditArchive",
            target_id=str(record.pk),
            detail={"partition": name, "rows": str(count), "digest": digest},
        )
        cursor.execute(f'ALTER TABLE "{table}" DETACH PARTITION "{name}"')
        keep_row_triggers(name, table, cursor)
    return record


def keep_row_triggers(detached: str, table: str, cursor) -> None:  # pragma: postgresql only
    """A detached partition loses the row triggers it had from its parent: it gets its own, so it stays
    append-only until its owner drops it."""
    cursor.execute(
        "SELECT pg_get_triggerdef(oid) FROM pg_trigger "
        "WHERE tgrelid = to_regclass(%s) AND NOT tgisinternal AND (tgtype & 1) <> 0",
        [table],
    )
    for (definition,) in cursor.fetchall():
        cursor.execute(definition.replace(f" ON public.{table} ", f" ON public.{detached} ", 1))
