"""The bulk-load queue from the command line: `manage.py bulk_jobs` lists the jobs not finished and the dead
letters; `--dispatch` sends again the messages of jobs that wait (run it from cron every few minutes: a Redis
restart loses the messages, never the jobs)."""

from django.core.management.base import BaseCommand, CommandError

from bulk import actions
from bulk.models import Job


class Command(BaseCommand):
    help = "List bulk-load jobs not finished and dead letters; --dispatch sends waiting jobs' messages again."

    def add_arguments(self, parser):
        parser.add_argument("--dispatch", action="store_true", help="Send again what waits (lost messages).")

    def handle(self, *args, dispatch=False, **options):
        if dispatch:
            if not actions.enabled():
                raise CommandError("The queue is off: CELERY_BROKER_URL is not set.")
            self.stdout.write(f"Sent {actions.sweep()} jobs' messages again.")
            return
        shown = Job.objects.filter(status__in=(*Job.OPEN, Job.Status.DEAD)).order_by("created_at")
        for job in shown:
            self.stdout.write(f"{job.pk} {job.created_at:%Y-%m-%d %H:%M} {job.kind} {job.progress} {job.requested_by}")
        self.stdout.write(f"{shown.count()} jobs not finished or dead.")
