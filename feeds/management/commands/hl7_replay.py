"""Apply kept HL7 v2 messages again after a fix: `manage.py hl7_replay --status failed --since 2024-03-01`.

Chooses messages by id (`--id`, repeatable), by status (`--status`, repeatable; default: the ones needing action —
held, invalid, failed, and any never processed), by feed or organisation, and by when they were received
(`--since` / `--until`, dates in Europe/London, inclusive). Each is re-run from its stored raw text through the
same pipeline (feeds.actions.retry), oldest first, audited as this command and its operator; a message whose raw
text retention has cleared is skipped. `--dry-run` lists what would be replayed. Re-applying an applied message
changes nothing the record holds (the import is idempotent), so a replay over a range is safe. `--queue` gives
the chosen ids to the bulk-load queue instead (a worker replays them, with retries; `--wait` follows it).
"""

import datetime
import sys
from collections import Counter

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from tqdm import tqdm

from audit.operators import os_user
from bulk import actions as bulk
from bulk.follow import announce
from feeds import actions, replays
from feeds.models import Message
from feeds.retention import NEEDS_ACTION
from feeds.segments import LONDON
from fhirapi.auth import command_actor

Status = Message.Status


def _day(value: str) -> datetime.date:
    try:
        return datetime.date.fromisoformat(value)
    except ValueError as error:
        raise CommandError(f"Not a date (YYYY-MM-DD): {value!r}") from error


class Command(BaseCommand):
    help = "Re-apply kept HL7 v2 messages from their raw text (by id, status, feed or date range)."

    def add_arguments(self, parser):
        parser.add_argument("--id", type=int, action="append", dest="ids", default=[], help="A message id.")
        parser.add_argument("--status", action="append", default=[], choices=Status.values)
        parser.add_argument("--feed", type=int, help="Only this feed's messages (its id).")
        parser.add_argument("--organisation", help="Only this sending organisation's messages (ODS code).")
        parser.add_argument("--since", type=_day, help="Received on or after this date.")
        parser.add_argument("--until", type=_day, help="Received on or before this date.")
        parser.add_argument("--limit", type=int, default=None, help="At most this many messages.")
        parser.add_argument("--dry-run", action="store_true", help="List what would be replayed; apply nothing.")
        parser.add_argument("--queue", action="store_true", help="Through the bulk-load queue (a worker runs it).")
        parser.add_argument("--submission-id", default="", help="With --queue: your id for it (run again: one job).")
        parser.add_argument("--wait", action="store_true", help="With --queue: follow the job until it ends.")

    def handle(self, *args, ids, status, feed=None, organisation=None, since=None, until=None, limit=None, **options):
        chosen = Message.objects.select_related("feed__organisation", "organisation").order_by("received_at", "pk")
        if ids:
            chosen = chosen.filter(pk__in=ids)
        if status or not ids:
            chosen = chosen.filter(status__in=status or NEEDS_ACTION)
        if feed is not None:
            chosen = chosen.filter(feed_id=feed)
        if organisation:
            chosen = chosen.filter(organisation__ods_code=organisation)
        if since:
            chosen = chosen.filter(received_at__gte=datetime.datetime.combine(since, datetime.time(), LONDON))
        if until:
            end = datetime.datetime.combine(until + datetime.timedelta(days=1), datetime.time(), LONDON)
            chosen = chosen.filter(received_at__lt=end)
        chosen = list(chosen[:limit] if limit else chosen)
        if options["dry_run"]:
            for message in chosen:
                self.stdout.write(
                    f"{message.pk} {message.received_at:%Y-%m-%d %H:%M} {message.message_type} {message.control_id}"
                    f" {message.status}{' (raw cleared)' if not message.raw else ''}"
                )
            self.stdout.write(f"{len(chosen)} messages would be replayed.")
            return
        actor = command_actor("hl7_replay", os_user())
        if options["queue"]:
            return self._queue(chosen, actor, options)
        outcomes, skipped = Counter(), 0
        now = timezone.now()
        for message in tqdm(chosen, desc="Replaying", unit="msg", file=sys.stderr, disable=options["verbosity"] == 0):
            try:
                reply = actions.retry(message, by=actor, now=now, endpoint="replay")
            except actions.CannotRetry as error:
                skipped += 1
                if options["verbosity"] >= 1:
                    self.stderr.write(str(error))
                continue
            outcomes[reply.status] += 1
        summary = ", ".join(f"{status} {count}" for status, count in sorted(outcomes.items())) or "none"
        self.stdout.write(f"Replayed {sum(outcomes.values())} messages: {summary}; {skipped} skipped (raw cleared).")

    def _queue(self, chosen, actor, options):
        if not bulk.enabled():
            raise CommandError("The queue is off: set CELERY_BROKER_URL (and run a worker) to use --queue.")
        by = bulk.Requester(email=actor.email)
        try:
            job, created = replays.submit(
                [message.pk for message in chosen],
                by=by,
                channel={"command": "hl7_replay", "endpoint": "replay"},
                submission_id=options["submission_id"],
            )
        except bulk.KeyReused as exc:
            raise CommandError(str(exc)) from exc
        announce(self, job, created, f"{job.total} messages", wait=options["wait"], quiet=options["verbosity"] == 0)
