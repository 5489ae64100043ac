"""Check the audit trail against its seals: `manage.py verify_audit [--since YYYY-MM-DD]` (audit/seals.py).

Prints what it checked and every problem found; exits 1 when the trail is not intact (a row gone or altered, a
seal gone or altered), 0 otherwise. The check is itself audited (`audit.verified`), naming the operator.
"""

import datetime
import sys
from zoneinfo import ZoneInfo

from django.core.management.base import BaseCommand, CommandError

from audit import seals
from audit.operators import os_user


def _since(value: str) -> datetime.datetime:
    try:
        day = datetime.date.fromisoformat(value)
    except ValueError as error:
        raise CommandError(f"Not a date (YYYY-MM-DD): {value!r}") from error
    return datetime.datetime.combine(day, datetime.time(), tzinfo=ZoneInfo("Europe/London"))


class Command(BaseCommand):
    help = "Check the audit trail's seals and every sealed row; exit 1 if anything was removed or altered."

    def add_arguments(self, parser):
        parser.add_argument("--since", type=_since, help="Only seals made from this date (Europe/London).")
        parser.add_argument("--operator", default="", help="Who runs it (default: the operating-system user).")

    def handle(self, *args, since, operator, **options):
        report = seals.verify(since=since)
        for line in report.lines():
            self.stdout.write(line)
        operator = operator or os_user()
        seals.record_verification(
            report, actor_email="command:verify_audit" + (f"@{operator}" if operator else ""), via="command"
        )
        if not report.intact:
            sys.exit(1)
