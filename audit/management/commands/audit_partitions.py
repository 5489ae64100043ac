"""The audit trail's month partitions (PostgreSQL): `manage.py audit_partitions` makes the coming months' partitions
(run it daily, as the owner role: docs/ops/audit-partitions.md), `--list` shows them, `--archive YYYY-MM` takes one
month off the live trail after checking its seals. Exits 1 when a month could not be made or archived."""

import sys

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from audit import partitions
from audit.operators import os_user


def _month(value: str):
    try:
        return partitions.parse_month(value)
    except ValueError as error:
        raise CommandError(str(error)) from error


class Command(BaseCommand):
    help = "Make the audit trail's month partitions ahead of time, list them, or archive an old month."

    def add_arguments(self, parser):
        parser.add_argument("--ahead", type=int, default=partitions.MONTHS_AHEAD, help="Months to make ahead.")
        parser.add_argument("--list", dest="show", action="store_true", help="Show the partitions and their rows.")
        parser.add_argument("--archive", type=_month, metavar="YYYY-MM", help="Detach this month after its check.")
        parser.add_argument(
            "--table", choices=["accessevent", "auditevent", "both"], default="both", help="Which table to archive."
        )
        parser.add_argument("--operator", default="", help="Who runs it (default: the operating-system user).")

    def handle(self, *args, ahead, show, archive, table, operator, **options):
        if not any(partitions.is_partitioned(name) for name in partitions.TABLES):
            self.stdout.write("The audit tables are not partitioned on this database (PostgreSQL only): nothing to do.")
            return
        if archive is not None:
            self._archive(archive, table, operator)
        elif show:
            self._list()
        else:
            self._make(ahead)

    def _make(self, ahead):  # pragma: postgresql only
        made = partitions.ensure(ahead=ahead)
        for name in made.created:
            self.stdout.write(f"Made {name}.")
        for name in made.blocked:
            self.stderr.write(
                f"Not made {name}: rows of that month are already in the default partition "
                "(they stay there, readable and sealed; docs/ops/audit-partitions.md says what to do)."
            )
        if not made.created and not made.blocked:
            self.stdout.write(f"Every month to {ahead} ahead already has its partition.")
        if made.blocked:
            sys.exit(1)

    def _archive(self, month, table, operator):  # pragma: postgresql only
        by = "command:audit_partitions@" + (operator or os_user() or "unknown")
        failed = False
        for short in ("accessevent", "auditevent") if table == "both" else (table,):
            try:
                record = partitions.archive(short, month, by=by, online_months=settings.AUDIT_ONLINE_MONTHS)
            except partitions.ArchiveRefused as refused:
                self.stderr.write(str(refused))
                failed = True
                continue
            self.stdout.write(
                f"Detached {record.partition}: {record.row_count:,} rows, digest {record.rows_digest}. Now, as the "
                f"owner role: pg_dump --format=custom --table=public.{record.partition} --file={record.partition}.dump"
                f' "$OWNER_DATABASE_URL", keep the dump where your retention schedule says, then '
                f"DROP TABLE {record.partition};"
            )
        if failed:
            sys.exit(1)

    def _list(self):  # pragma: postgresql only
        with connection.cursor() as cursor:
            for table in partitions.TABLES:
                self.stdout.write(f"{table}:")
                for partition in partitions.partitions(table):
                    cursor.execute(f'SELECT count(*) FROM "{partition.name}"')  # noqa: S608 (our own names)
                    (rows,) = cursor.fetchone()
                    self.stdout.write(f"  {partition.name:45} {partition.label:32} {rows:>12,} rows")
                self.stdout.write(f"  months made ahead: {partitions.months_ahead(table)}")
