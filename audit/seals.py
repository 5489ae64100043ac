"""The audit trail sealed in batches, so that tampering by someone who can get past the triggers shows (H-20).

Triggers and the app role's privileges (docs/database-roles.md) stop the app and its credentials from changing
audit rows; they do not stop a database superuser or the tables' owner. Sealing makes what such a person does
visible afterwards:

- `seal()` (run every few seconds by `manage.py seal_audit --every 5`) takes, for each audit table, the rows
  committed since the last seal and writes one AuditSeal: the exact ids it covers (as runs), their count, a
  SHA-256 over their canonical form, and a hash over all of that and the previous seal's hash — one chain of
  seals across both tables, ordered by seal id, forks refused by a unique `previous`.
- Inserts never wait: rows are written exactly as before and sealed after they commit, so no insert contends for
  a chain head. A row whose transaction commits after later ids were sealed (a straggler) is picked up by the next
  run, which looks again over the last RECENT_SEALS seals of its table; `--sweep` looks over all of them.
- `verify()` walks the chain: a seal removed, altered or reordered breaks it; a row removed from a sealed batch
  is named by id; a row altered changes its batch's digest; rows not covered by any seal are counted (stragglers
  older than the look-back, or rows inserted by hand) and said so. The newest seal's hash is logged at each run,
  so a copy held elsewhere (the log store) anchors the chain's end: a tail of seals removed together with their
  rows is found by comparing it.

The canonical form of a row is JSON of [id, each field of the table's scheme], datetimes as UTC ISO 8601 with
microseconds, UUIDs as text, JSON detail with sorted keys — the same on PostgreSQL and SQLite, and after a
physical restore. A new audit column needs a new scheme (tests/audit/test_seals.py fails until it has one).
"""

import bisect
import datetime
import hashlib
import json
import logging
import uuid
from dataclasses import dataclass, field

from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from .models import AccessEvent, AuditArchive, AuditEvent, AuditSeal
from .names import Action

logger = logging.getLogger(__name__)

GENESIS = "0" * 64
SCHEME = 1
SCHEMES = {
    1: {
        "accessevent": (
            "at",
            "user_id",
            "user_email",
            "professional_name",
            "professional_role",
            "organisation_code",
            "patient_id",
            "patient_nhs_number",
            "outcome",
            "basis",
            "reason",
            "page",
            "path",
            "request_id",
            "launch",
        ),
        "auditevent": ("at", "actor_id", "actor_email", "action", "target_type", "target_id", "patient_id", "detail"),
    }
}
MODELS = {"accessevent": AccessEvent, "auditevent": AuditEvent}
BATCH_ROWS = 10_000  # at most this many rows in one seal (a backlog is sealed over several)
RECENT_SEALS = 12  # stragglers looked for among the newest this many seals of a table (a minute at --every 5)
LOCK_KEY = 0x5EA1  # PostgreSQL advisory lock: one sealer at a time (the unique `previous` refuses a fork anyway)


# --- the canonical form ---------------------------------------------------------------------------------------


def _canonical(value):
    if isinstance(value, datetime.datetime):
        return value.astimezone(datetime.UTC).isoformat(timespec="microseconds")
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def row_bytes(row: tuple) -> bytes:
    """One row (id first, then the scheme's fields) as the digest reads it."""
    text = json.dumps([_canonical(v) for v in row], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.encode() + b"\n"


def digest_of(rows) -> str:
    """SHA-256 over rows in id order."""
    hasher = hashlib.sha256()
    for row in rows:
        hasher.update(row_bytes(row))
    return hasher.hexdigest()


SEAL_FIELDS = ("previous", "table", "scheme", "ranges", "row_count", "rows_digest", "sealed_at")


def seal_hash(*, previous, table, scheme, ranges, row_count, rows_digest, sealed_at) -> str:
    content = json.dumps(
        [previous, table, scheme, ranges, row_count, rows_digest, _canonical(sealed_at)], separators=(",", ":")
    )
    return hashlib.sha256(content.encode()).hexdigest()


def runs(ids: list[int]) -> list[list[int]]:
    """Sorted ids as [first, last] runs of consecutive ids."""
    out = []
    for pk in ids:
        if out and pk == out[-1][1] + 1:
            out[-1][1] = pk
        else:
            out.append([pk, pk])
    return out


class Covered:
    """Whether an id lies in any of a set of [first, last] runs (which never overlap: an id is sealed once)."""

    def __init__(self, ranges):
        self.ranges = sorted(ranges)
        self.starts = [first for first, _ in self.ranges]

    def __contains__(self, pk: int) -> bool:
        at = bisect.bisect_right(self.starts, pk) - 1
        return at >= 0 and self.ranges[at][1] >= pk


def _in_runs(ranges) -> Q:
    wanted = Q()
    for first, last in ranges:
        wanted |= Q(pk__gte=first, pk__lte=last) if first != last else Q(pk=first)
    return wanted


def rows_of(table: str, scheme: int, wanted: Q):
    return MODELS[table].objects.filter(wanted).order_by("pk").values_list("pk", *SCHEMES[scheme][table])


# --- sealing --------------------------------------------------------------------------------------------------


def _stragglers(table: str, recent: list[dict], start: int, high: int) -> list[int]:
    """Ids in (start, high] — the span the newest seals cover — that none of them covers: committed after their
    neighbours were sealed. No seal outside `recent` can cover an id above `start` (seals are ordered by their
    last id, and an id is sealed once), so the look-back never reseals what an older seal holds. Counted run by
    run first; expanded only when a count is short."""
    if high <= start:
        return []
    present = list(MODELS[table].objects.filter(pk__gt=start, pk__lte=high).order_by("pk").values_list("pk", flat=True))
    covered = Covered(run for seal in recent for run in seal["ranges"])
    inside = sum(
        bisect.bisect_right(present, last) - bisect.bisect_left(present, first) for first, last in covered.ranges
    )
    if inside == len(present):
        return []
    return [pk for pk in present if pk not in covered]


def _seal_table(table: str, *, now, batch_rows: int, look_back: int | None) -> AuditSeal | None:
    seals = AuditSeal.objects.filter(table=table).order_by("-last_id").values("first_id", "last_id", "ranges")
    window = list(seals if look_back is None else seals[: look_back + 1])
    recent, start = window, 0
    if look_back is not None and len(window) > look_back:
        recent, start = window[:look_back], window[look_back]["last_id"]
    high = recent[0]["last_id"] if recent else 0
    rows = list(rows_of(table, SCHEME, Q(pk__gt=high))[:batch_rows])
    late = _stragglers(table, recent, start, high)
    if late:
        rows = sorted([*rows_of(table, SCHEME, Q(pk__in=late)), *rows])
    if not rows:
        return None
    ids = [row[0] for row in rows]
    head = AuditSeal.objects.order_by("-id").values_list("hash", flat=True).first()
    values = {
        "previous": head or GENESIS,
        "table": table,
        "scheme": SCHEME,
        "ranges": runs(ids),
        "row_count": len(rows),
        "rows_digest": digest_of(rows),
        "sealed_at": now,
    }
    return AuditSeal.objects.create(**values, first_id=ids[0], last_id=ids[-1], hash=seal_hash(**values))


def seal(*, now=None, batch_rows: int = BATCH_ROWS, sweep: bool = False) -> list[AuditSeal]:
    """Seal what has been committed and not sealed yet: one seal per table that has rows waiting (at most
    `batch_rows` new rows each, plus the stragglers found). `sweep`: look for stragglers under every seal, not
    only the newest RECENT_SEALS of each table. Another sealer at the same moment: this one waits (PostgreSQL), or
    its fork is refused and it tries again once."""
    for attempt in (1, 2):
        try:
            with transaction.atomic():
                if connection.vendor == "postgresql":  # pragma: postgresql only
                    with connection.cursor() as cursor:
                        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [LOCK_KEY])
                made = []
                for table in MODELS:
                    sealed = _seal_table(
                        table,
                        now=now or timezone.now(),
                        batch_rows=batch_rows,
                        look_back=None if sweep else RECENT_SEALS,
                    )
                    if sealed is not None:
                        made.append(sealed)
        except IntegrityError:  # another sealer wrote on the same head first
            if attempt == 2:
                raise
            continue
        if made:
            logger.info(
                "audit sealed: %s; chain head %s",
                ", ".join(f"{s.table} {s.row_count} rows" for s in made),
                made[-1].hash,
            )
        return made
    return []


# --- verifying ------------------------------------------------------------------------------------------------


@dataclass
class Problem:
    seal_id: int | None
    kind: str  # chain, seal, missing, altered
    text: str


@dataclass
class Report:
    seals: int = 0
    rows: int = 0
    problems: list[Problem] = field(default_factory=list)
    unsealed_inside: dict[str, int] = field(default_factory=dict)  # rows under a seal's ids that no seal covers
    unsealed_newest: dict[str, int] = field(default_factory=dict)  # rows newer than the newest seal (not yet)
    archived: int = 0  # sealed rows taken off the live trail by an archive (AuditArchive), so not read here
    head: str = GENESIS
    first_sealed_at: datetime.datetime | None = None
    last_sealed_at: datetime.datetime | None = None
    since: datetime.datetime | None = None

    @property
    def intact(self) -> bool:
        return not self.problems

    def lines(self) -> list[str]:
        """What the command prints and admin shows."""
        period = f" sealed since {self.since:%Y-%m-%d %H:%M}" if self.since else ""
        out = [f"{self.seals:,} seals{period}, {self.rows:,} audit rows checked."]
        if self.last_sealed_at:
            out.append(f"Newest seal {self.last_sealed_at:%Y-%m-%d %H:%M:%S} UTC, chain head {self.head}.")
        out += [f"PROBLEM ({p.kind}, seal {p.seal_id}): {p.text}" for p in self.problems]
        for table, count in self.unsealed_inside.items():
            if count:
                out.append(
                    f"{count:,} {table} rows lie among sealed ids but no seal covers them: committed after their "
                    "neighbours were sealed (seal_audit --sweep seals them), or inserted by hand."
                )
        if self.archived:
            out.append(
                f"{self.archived:,} sealed rows are archived (their month detached after its seals were checked; "
                "see Audit archives), so were not read."
            )
        for table, count in self.unsealed_newest.items():
            if count:
                out.append(f"{count:,} {table} rows are newer than the newest seal (sealed at its next run).")
        out.append("Intact: every sealed row is present and unchanged." if self.intact else "NOT INTACT.")
        return out


def _expected_ids(ranges) -> list[int]:
    return [pk for first, last in ranges for pk in range(first, last + 1)]


def archived_ids(table: str) -> Covered:
    archives = AuditArchive.objects.filter(table=table).values_list("ranges", flat=True)
    return Covered(run for ranges in archives for run in ranges)


def seal_flaw(seal_row: AuditSeal) -> str:
    """What is wrong with a seal itself (before its rows are read), or "" when it is as it was made."""
    if seal_row.table not in MODELS or seal_row.scheme not in SCHEMES:
        return "This seal names no known table or scheme."
    values = {name: getattr(seal_row, name) for name in SEAL_FIELDS}
    if seal_hash(**values) != seal_row.hash or len(_expected_ids(seal_row.ranges)) != seal_row.row_count:
        return "This seal was altered after it was made."
    return ""


def _check_rows(seal: AuditSeal, report: Report, archived: Covered | None = None) -> int:
    rows = list(rows_of(seal.table, seal.scheme, _in_runs(seal.ranges)))
    found = {row[0] for row in rows}
    expected = _expected_ids(seal.ranges)
    missing = [pk for pk in expected if pk not in found]
    if missing and archived is not None:
        report.archived += sum(1 for pk in missing if pk in archived)
        missing = [pk for pk in missing if pk not in archived]
        if not missing and len(rows) < len(expected):
            return len(rows)  # part of this batch is archived: what remains is present, its digest cannot be had
    if missing:
        shown = ", ".join(str(pk) for pk in missing[:20]) + (" …" if len(missing) > 20 else "")
        report.problems.append(
            Problem(seal.pk, "missing", f"{len(missing)} {seal.table} row(s) sealed here are gone: id {shown}.")
        )
    elif digest_of(rows) != seal.rows_digest:
        report.problems.append(
            Problem(
                seal.pk,
                "altered",
                f"{seal.table} rows {seal.first_id}–{seal.last_id} differ from what was sealed "
                f"({seal.row_count} rows, sealed {seal.sealed_at:%Y-%m-%d %H:%M:%S} UTC): compare with a backup.",
            )
        )
    return len(rows)


def verify(*, since: datetime.datetime | None = None) -> Report:
    """Check the chain of seals and every sealed row (since a time: from the last seal before it, taken as
    trusted). Reads every sealed row once; run it off-peak on a large trail."""
    report = Report(since=since)
    seals = AuditSeal.objects.order_by("pk")
    previous = GENESIS
    if since is not None:
        anchor = AuditSeal.objects.filter(sealed_at__lt=since).order_by("-pk").first()
        if anchor is not None:
            seals, previous = seals.filter(pk__gt=anchor.pk), anchor.hash
    sealed_rows = dict.fromkeys(MODELS, 0)
    high = dict.fromkeys(MODELS, 0)
    archived = {table: archived_ids(table) for table in MODELS}
    for seal_row in seals.iterator(chunk_size=200):
        report.seals += 1
        report.first_sealed_at = report.first_sealed_at or seal_row.sealed_at
        report.last_sealed_at = seal_row.sealed_at
        if seal_row.previous != previous:
            report.problems.append(Problem(seal_row.pk, "chain", "The seal before this one is missing or was altered."))
        flaw = seal_flaw(seal_row)
        if flaw:
            report.problems.append(Problem(seal_row.pk, "seal", flaw))
        else:
            found = _check_rows(seal_row, report, archived[seal_row.table])
            report.rows += found
            sealed_rows[seal_row.table] += found
            high[seal_row.table] = max(high[seal_row.table], seal_row.last_id)
        previous = seal_row.hash
    report.head = previous
    if since is None:
        for table, model in MODELS.items():
            report.unsealed_inside[table] = model.objects.filter(pk__lte=high[table]).count() - sealed_rows[table]
            report.unsealed_newest[table] = model.objects.filter(pk__gt=high[table]).count()
    return report


def check_before_archive(table: str, low: int, high: int) -> tuple[Report, Covered]:  # pragma: postgresql only
    """Before a month leaves the live trail: every seal that covers any id in [low, high] unaltered, with all
    its rows present. Returns the report and what those seals cover (the caller counts its rows outside it)."""
    report = Report()
    covered = []
    overlapping = AuditSeal.objects.filter(table=table, first_id__lte=high, last_id__gte=low).order_by("pk")
    for seal_row in overlapping.iterator(chunk_size=200):
        report.seals += 1
        flaw = seal_flaw(seal_row)
        if flaw:
            report.problems.append(Problem(seal_row.pk, "seal", flaw))
            continue
        report.rows += _check_rows(seal_row, report)
        covered += seal_row.ranges
    return report, Covered(covered)


def record_verification(report: Report, *, actor_id=None, actor_email: str = "", via: str) -> AuditEvent:
    """The check itself goes on the trail (and is sealed with it): who ran it, from where, and what it found."""
    return AuditEvent.objects.create(
        actor_id=actor_id,
        actor_email=actor_email,
        action=Action.AUDIT_VERIFIED,
        target_type="AuditSeal",
        target_id=report.head,
        detail={
            "via": via,
            "since": report.since.isoformat() if report.since else "",
            "seals": str(report.seals),
            "rows": str(report.rows),
            "intact": str(report.intact),
            "problems": "; ".join(f"{p.kind} at seal {p.seal_id}" for p in report.problems)[:2000],
            "unsealed_inside": str(sum(report.unsealed_inside.values())),
        },
    )
