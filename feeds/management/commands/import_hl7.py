"""Import HL7 v2 files sent by one organisation: `manage.py import_hl7 FILE... --organisation ODS`.

Batch files (FHS/BHS ... BTS/FTS) and plain concatenated messages, segments separated by carriage returns or
newlines. Every message goes through the same pipeline as one received over MLLP (feeds.receive): kept first,
checked against the organisation's active feed (the oldest, if several; with none, the types carerecord supports
are accepted and the rest refused — the command says so), converted and imported whole, audited, queued in admin
when it cannot be applied. Prints a summary per message type: applied, held, ignored, refused, invalid, failed.
"""

import sys
from collections import Counter, defaultdict
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from directory.models import Organisation
from feeds import segments
from feeds.convert import Invalid
from feeds.models import Feed, Message
from feeds.receive import receive

Status = Message.Status
COLUMNS = [Status.APPLIED, Status.HELD, Status.IGNORED, Status.REFUSED, Status.INVALID, Status.FAILED]


class Command(BaseCommand):
    help = "Import HL7 v2 messages (batch files or concatenated messages) sent by one organisation."

    def add_arguments(self, parser):
        parser.add_argument("files", nargs="+", type=Path)
        parser.add_argument("--organisation", required=True, help="ODS code of the sending organisation.")

    def handle(self, *args, files, organisation, **options):
        sender = Organisation.objects.filter(ods_code=organisation).first()
        if sender is None:
            raise CommandError(f"No organisation with ODS code {organisation!r}.")
        feed = Feed.objects.filter(organisation=sender, active=True).order_by("pk").first()
        if feed is None:
            self.stderr.write(
                f"{sender.ods_code} has no active feed configured: accepting the message types carerecord supports."
            )
        else:
            self.stdout.write(f"Applying feed {feed.name!r} ({feed.message_types}).")
        messages, unreadable = [], []
        for path in files:
            if not path.is_file():
                raise CommandError(f"No such file: {path}")
            try:
                messages.extend((path, text) for text in segments.split(path.read_bytes()))
            except Invalid as error:
                unreadable.append((path, error.reason))
        counts: dict[str, Counter] = defaultdict(Counter)
        problems = []
        quiet = options["verbosity"] == 0
        for path, text in tqdm(messages, desc="Messages", unit="msg", file=sys.stderr, disable=quiet):
            reply = receive(text, feed=feed, organisation=sender, peer=f"file:{path}", endpoint="file")
            kind = (reply.message.message_type if reply.message else "") or "(unreadable)"
            counts[kind][reply.status or Status.FAILED] += 1
            if reply.status not in (Status.APPLIED, Status.IGNORED) and reply.message is not None:
                problems.append((path, reply.message))
        self._summarise(counts, problems, unreadable, options["verbosity"])

    def _summarise(self, counts, problems, unreadable, verbosity):
        width = max([len(kind) for kind in counts] + [12])
        self.stdout.write(f"{'message type':<{width}}  " + "  ".join(f"{status:>8}" for status in COLUMNS))
        for kind in sorted(counts):
            self.stdout.write(f"{kind:<{width}}  " + "  ".join(f"{counts[kind][s]:>8}" for s in COLUMNS))
        totals = sum(counts.values(), Counter())
        self.stdout.write(f"{'total':<{width}}  " + "  ".join(f"{totals[s]:>8}" for s in COLUMNS))
        for path, reason in unreadable:
            self.stderr.write(f"{path}: not read: {reason}")
        if verbosity >= 1:
            for path, message in problems:
                where = f" at {message.error_location}" if message.error_location else ""
                self.stderr.write(
                    f"{path}: {message.message_type} {message.control_id}: {message.status}{where}: {message.reason}"
                )
