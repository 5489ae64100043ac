"""Apply involvements that start or end by the clock to care-team grants. Run from cron every few minutes."""

from django.core.management.base import BaseCommand

from sharing.actions import sync_all_access


class Command(BaseCommand):
    help = "Grant access for involvements that have started and revoke it for those that have ended."

    def handle(self, *args, **options):
        granted, revoked = sync_all_access()
        self.stdout.write(f"Granted {granted}, revoked {revoked} care-team grants.")
