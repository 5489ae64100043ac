"""Clear the raw text of HL7 v2 messages older than HL7_RAW_RETENTION_DAYS: `manage.py hl7_purge` (daily, cron).

The rows stay (what came, when, from whom, what became of it); a message that still needs action (held, invalid,
failed, never processed) keeps its text. `--dry-run` counts without clearing.
"""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from feeds import retention


class Command(BaseCommand):
    help = "Clear the raw text of HL7 v2 messages past the retention period (rows and metadata kept)."

    def add_arguments(self, parser):
        parser.add_argument("--days", type=int, default=None, help="Override HL7_RAW_RETENTION_DAYS.")
        parser.add_argument("--dry-run", action="store_true", help="Count what would be cleared; change nothing.")

    def handle(self, *args, days=None, dry_run=False, **options):
        days = settings.HL7_RAW_RETENTION_DAYS if days is None else days
        if days < 1:
            raise CommandError("--days must be at least 1.")
        if dry_run:
            self.stdout.write(f"{retention.due(days=days).count()} messages older than {days} days would be cleared.")
            return
        cleared = retention.clear(days=days)
        self.stdout.write(f"Cleared the raw text of {cleared} messages older than {days} days.")
