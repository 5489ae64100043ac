"""Importing one submission (a resource or a Bundle) from one sending organisation.

Stages run in dependency order inside one database transaction: names (organisations, practitioners,
medications), patients, record entries, results with their observations, then care teams. A transaction
Bundle is all or nothing: any error rolls the whole of it back. A batch or collection keeps the good entries
and reports the others. A resource type the record has no place for (List, Provenance, Immunization...) is
reported as a warning and not imported; it does not fail a transaction, since UK Core bundles routinely
carry such resources alongside the ones that matter here.
"""

from collections import Counter, defaultdict
from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone

from .context import Context, Unmappable
from .mapping import DIRECTORY_TYPES, ENTRY_MAPPERS, HANDLED_TYPES
from .mapping.directory import save_directory
from .mapping.patients import save_patients
from .mapping.results import save_results
from .mapping.teams import save_care_teams
from .outcome import Issue, error, information, warning
from .parse import Entry, Submission, Unreadable
from .references import entry_key
from .upsert import REJECTED, strongest, upsert

ACCEPTED_BUNDLES = {"transaction", "batch", "collection", "document"}
WRITE_METHODS = {"POST", "PUT"}


@dataclass
class Outcome:
    """What became of one entry: created, updated, unchanged or rejected, and why."""

    entry: Entry
    key: str | None = None
    status: str = ""
    stale: bool = False
    issues: list[Issue] = field(default_factory=list)

    @property
    def resource_type(self) -> str:
        return self.entry.resource_type or "(none)"

    def reject(self, issue: Issue) -> None:
        self.status = REJECTED
        self.issues.append(self._located(issue))

    def finish(self, status: str, *, stale: bool = False) -> None:
        if self.status == REJECTED:
            return
        self.status = strongest(self.status, status) if self.status else status
        if stale and not self.stale:
            self.stale = True
            self.issues.append(information("Older than the copy already held (meta.lastUpdated): the newer is kept."))

    def _located(self, issue: Issue) -> Issue:
        """Mappers name elements from the resource ("Condition.subject"); in a Bundle, say which entry."""
        prefix = self.entry.resource_type
        if not prefix or not issue.expression.startswith(prefix) or self.entry.expression in ("", prefix):
            return issue
        expression = self.entry.expression + issue.expression.removeprefix(prefix)
        return Issue(issue.severity, issue.code, issue.diagnostics, expression)


@dataclass
class IngestReport:
    bundle_type: str | None
    outcomes: list[Outcome]
    applied: bool = True

    @property
    def atomic(self) -> bool:
        return self.bundle_type == "transaction"

    @property
    def errors(self) -> list[Issue]:
        return [issue for outcome in self.outcomes for issue in outcome.issues if issue.is_error]

    def counts(self) -> dict[str, Counter]:
        """Per resource type: how many were created, updated, unchanged, rejected (all rejected if rolled back)."""
        counts = defaultdict(Counter)
        for outcome in self.outcomes:
            counts[outcome.resource_type][outcome.status if self.applied else REJECTED] += 1
        return counts


class _RollBack(Exception):
    pass


def ingest(submission: Submission, *, organisation, now=None) -> IngestReport:
    if submission.bundle_type is not None and submission.bundle_type not in ACCEPTED_BUNDLES:
        raise Unreadable(
            [
                error(
                    "not-supported",
                    f"A {submission.bundle_type} Bundle cannot be imported: send a transaction, batch or collection.",
                    "Bundle.type",
                )
            ]
        )
    report = IngestReport(submission.bundle_type, [Outcome(entry) for entry in submission.entries])
    _check(report.outcomes)
    if report.atomic and report.errors:
        report.applied = False
        return report
    full_urls = {o.entry.full_url: o.key for o in report.outcomes if o.key and o.entry.full_url}
    ctx = Context(organisation=organisation, now=now or timezone.now(), full_urls=full_urls)
    try:
        with transaction.atomic():
            _apply([o for o in report.outcomes if o.key and not o.status], ctx)
            if report.atomic and report.errors:
                raise _RollBack
    except _RollBack:
        report.applied = False
    return report


def _check(outcomes: list[Outcome]) -> None:
    """Reject what cannot be imported before anything is written: invalid, unkeyed, duplicated, not a write."""
    seen = set()
    for outcome in outcomes:
        entry = outcome.entry
        if entry.issues:
            outcome.status, outcome.issues = REJECTED, list(entry.issues)
        elif entry.method and entry.method not in WRITE_METHODS:
            outcome.reject(
                error(
                    "not-supported",
                    f"{entry.method} entries are not processed here: this endpoint imports resources (POST or PUT).",
                    f"Bundle.entry[{entry.index}].request.method",
                )
            )
        elif entry.resource is None:
            outcome.reject(error("required", "The entry has no resource.", entry.expression))
        elif entry.resource_type not in HANDLED_TYPES:
            outcome.status = REJECTED
            outcome.issues.append(
                warning(
                    "not-supported",
                    f"{entry.resource_type} has no place in the shared record: not imported.",
                    entry.expression,
                )
            )
        else:
            key = entry_key(entry)
            if key is None:
                outcome.reject(
                    error("required", "No id, urn:uuid fullUrl or identifier: it could not be imported idempotently.")
                )
            elif key in seen:
                outcome.reject(error("duplicate", f"{key} appears more than once in what was sent.", entry.expression))
            else:
                outcome.key = key
                seen.add(key)


def _apply(outcomes: list[Outcome], ctx: Context) -> None:
    by_type = defaultdict(list)
    for outcome in outcomes:
        by_type[outcome.entry.resource_type].append(outcome)
    save_directory([o for kind in DIRECTORY_TYPES for o in by_type[kind]], ctx)
    save_patients(by_type["Patient"], ctx)
    clinical = [o for o in outcomes if o.entry.resource_type not in DIRECTORY_TYPES | {"Patient"}]
    ctx.load_patients(reference for o in clinical for reference in patient_references(o.entry.resource))
    _save_entries([o for o in clinical if o.entry.resource_type in ENTRY_MAPPERS], ctx)
    save_results(by_type["DiagnosticReport"], by_type["Observation"], ctx)
    save_care_teams(by_type["CareTeam"], ctx)


def patient_references(resource):
    for name in ("subject", "patient"):
        reference = getattr(resource, name, None)
        if reference is not None:
            yield reference
    for participant in getattr(resource, "participant", None) or []:
        actor = getattr(participant, "actor", None)
        if actor is not None:
            yield actor


def _save_entries(outcomes: list[Outcome], ctx: Context) -> None:
    rows = defaultdict(dict)
    owners = {}
    for outcome in outcomes:
        try:
            model, fields = ENTRY_MAPPERS[outcome.entry.resource_type](outcome.entry.resource, ctx)
        except Unmappable as exc:
            outcome.reject(exc.issue)
            continue
        rows[model][outcome.key] = fields
        owners[model, outcome.key] = outcome
    for model, model_rows in rows.items():
        for key, upserted in upsert(model, model_rows, organisation_id=ctx.organisation.pk, now=ctx.now).items():
            owners[model, key].finish(upserted.status, stale=upserted.stale)
