"""Import FHIR R4 (UK Core) files for one organisation: `manage.py import_fhir PATH... --organisation ODS`.

Files and folders (searched recursively), JSON or XML, single resources or Bundles. Everything except
transaction Bundles is imported together in one run, so a Condition in one file finds the Patient in another
whatever the file order; each transaction Bundle is then applied on its own, all or nothing.

`--queue` gives the files to the bulk-load queue instead (a worker applies them the same way, with retries;
docs/ops/bulk-loads.md): `--submission-id` names the submission so that running it again finds the same job,
and `--wait` follows it with a progress bar.

Each of those submissions writes one AuditEvent (`fhir.submission`, as the API does) naming the command, the
run, the files and the operator: `--operator EMAIL` names the account running it (then the audit rows' actor),
else the operating-system user is recorded where it can be told.
"""

import sys
import uuid
from collections import Counter
from dataclasses import replace
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from audit import operators
from bulk import actions as bulk
from bulk.follow import announce
from directory.models import Organisation
from fhirapi.auth import command_actor
from fhirapi.bulkload import STATUSES, counts_of, plan, submit_files
from fhirapi.ingest import Channel, IngestReport, ingest

SUFFIXES = {".json", ".xml"}


class Command(BaseCommand):
    help = "Import FHIR R4 UK Core resources (files or folders, JSON or XML) sent by one organisation."

    def add_arguments(self, parser):
        parser.add_argument("paths", nargs="+", type=Path)
        parser.add_argument("--organisation", required=True, help="ODS code of the sending organisation.")
        parser.add_argument("--operator", default="", help="Email address of the account running the import.")
        parser.add_argument("--queue", action="store_true", help="Through the bulk-load queue (a worker runs it).")
        parser.add_argument("--submission-id", default="", help="With --queue: your id for it (sent again: one job).")
        parser.add_argument("--wait", action="store_true", help="With --queue: follow the job until it ends.")

    def handle(self, *args, paths, organisation, operator="", queue=False, submission_id="", wait=False, **options):
        sender = Organisation.objects.filter(ods_code=organisation).first()
        if sender is None:
            raise CommandError(f"No organisation with ODS code {organisation!r}.")
        channel = _channel(operator)
        files = list(_files(paths))
        if not files:
            raise CommandError("No .json or .xml files found.")
        quiet = options["verbosity"] == 0
        if queue:
            return self._queue(files, sender, channel, submission_id, wait=wait, quiet=quiet)
        contents = [
            (str(path), path.read_bytes(), "")
            for path in tqdm(files, desc="Reading", unit="file", file=sys.stderr, disable=quiet)
        ]
        planned = plan(contents)
        reports = [
            ingest(submission, organisation=sender, channel=replace(channel, source=name[:200]))
            for name, submission in tqdm(planned.parts, desc="Importing", unit="part", file=sys.stderr, disable=quiet)
        ]
        self._summarise(reports, planned.unreadable, planned.sources, options["verbosity"])

    def _queue(self, files, sender, channel, submission_id, *, wait: bool, quiet: bool):
        """Through the worker: the files kept in one job, its id printed; `--wait` follows its progress."""
        if not bulk.enabled():
            raise CommandError("The queue is off: set CELERY_BROKER_URL (and run a worker) to use --queue.")
        contents = [(str(path), path.read_bytes(), "") for path in files]
        try:
            job, created = submit_files(contents, organisation=sender, channel=channel, submission_id=submission_id)
        except bulk.KeyReused as exc:
            raise CommandError(str(exc)) from exc
        announce(self, job, created, f"{len(files)} files", wait=wait, quiet=quiet)

    def _summarise(self, reports: list[IngestReport], unreadable, sources, verbosity):
        counts = counts_of(reports)
        width = max([len(t) for t in counts] + [13])
        self.stdout.write(f"{'resource type':<{width}}  " + "  ".join(f"{s:>9}" for s in STATUSES))
        for resource_type in sorted(counts):
            row = "  ".join(f"{counts[resource_type][s]:>9}" for s in STATUSES)
            self.stdout.write(f"{resource_type:<{width}}  {row}")
        totals = sum(counts.values(), Counter())
        self.stdout.write(f"{'total':<{width}}  " + "  ".join(f"{totals[s]:>9}" for s in STATUSES))
        for path, exc in unreadable:
            self.stderr.write(f"{path}: not imported: {exc}")
        if verbosity >= 1:
            for report in reports:
                for outcome in report.outcomes:
                    for issue in outcome.issues:
                        if issue.severity in ("error", "fatal") or verbosity >= 2:
                            where = sources.get(id(outcome.entry), "")
                            self.stderr.write(f"{where}: {issue.severity}: {issue.diagnostics} [{issue.expression}]")
                if not report.applied:
                    self.stderr.write("A transaction was not applied: nothing in it was changed.")


def _channel(operator: str) -> Channel:
    """Who runs the import: the account named by --operator (the audit rows' actor), else the OS user."""
    os_user = operators.os_user()
    user = None
    if operator:
        user = get_user_model().objects.filter(email__iexact=operator.strip()).first()
        if user is None:
            raise CommandError(f"No account with email address {operator!r}.")
    actor = user or command_actor("import_fhir", os_user)
    return Channel(actor=actor, command="import_fhir", operator=user.email if user else os_user, run=uuid.uuid4().hex)


def _files(paths):
    for path in paths:
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.suffix.lower() in SUFFIXES and p.is_file())
        elif path.is_file():
            yield path
        else:
            raise CommandError(f"No such file or folder: {path}")
