"""Importing one submission (a resource or a Bundle) from one sending organisation.

Stages run in dependency order inside one database transaction: names (organisations, practitioners,
medications), patients, record entries, results with their observations, care teams, then consents (an
objection to sharing opens a case in IG's queue: mapping/consent.py). A transaction
Bundle is all or nothing: any error rolls the whole of it back (as does a message's content, from
$process-message: fhirapi.messaging). A batch or collection keeps the good entries
and reports the others. A resource type the record has no place for (List, Provenance, Immunization...) is
reported as a warning and not imported; it does not fail a transaction, since UK Core bundles routinely
carry such resources alongside the ones that matter here.

Every resource imported (created, updated or unchanged; not one refused, nor an older copy than the one held)
is kept as sent, per version (fhirapi.models.ReceivedResource), in the same transaction: a new version only
when its JSON differs from the latest, so re-sending changes nothing there either.

Every submission writes one AuditEvent (`fhir.submission`), whatever became of it: who sent it (the token, by id,
prefix and name, and its organisation; or the command and its operator), through what (`channel`), what became
of each resource type (created / updated / unchanged / rejected) and which patients it touched (ids, the first
PATIENTS_LISTED, and how many; those named only by refused entries apart, as `refused_patients`). With one
patient in all, the row's patient is that patient (admin's patient filter finds it). The actor is the partner
system itself (`auth.token_actor`). An applied submission is audited inside its transaction; one rolled back,
after it (nothing else of it remains). The row costs one INSERT per submission, never a query per resource.
"""

import uuid
import zlib
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from django.db import connection, transaction
from django.utils import timezone

from audit.names import Action
from audit.writers import audit
from directory.actions import note_received
from patients.models import Patient

from .conditional import prepare
from .context import Context, Unmappable
from .mapping import DIRECTORY_TYPES, ENTRY_MAPPERS, HANDLED_TYPES
from .mapping.common import last_updated
from .mapping.consent import save_consents
from .mapping.directory import map_directory, save_directory
from .mapping.letters import BINARY, save_attachments
from .mapping.patients import audit_identity_refusals, restricted_of, save_patients
from .mapping.results import save_results
from .mapping.teams import save_care_teams
from .models import ReceivedResource, digest_of, split_key
from .models import Submission as SubmissionRow
from .outcome import Issue, error, information, warning
from .parse import Entry, Submission, Unreadable, etag_version
from .references import entry_key, reference_strings
from .upsert import CREATED, REJECTED, UNCHANGED, UPDATED, strongest, upsert, write_rows

ACCEPTED_BUNDLES = {"transaction", "batch", "collection", "document"}
ATOMIC_BUNDLES = {"transaction", "message"}  # all or nothing (a message only through $process-message)
WRITE_METHODS = {"POST", "PUT"}
PATIENTS_LISTED = 50  # patient ids named in a submission's audit row (the count is always there)
STATUSES = (CREATED, UPDATED, UNCHANGED, REJECTED)


@dataclass(frozen=True)
class Channel:
    """How a submission arrived, for its audit row: an organisation's API token over HTTP (`token`, the
    `endpoint` and request id), or a management command (`command`, and its operator where known). `actor` is
    whom the audit trail names as making the change: the token's label, or the operator's account."""

    actor: object = None
    token: object = None
    endpoint: str = ""
    request_id: str = ""
    command: str = ""
    operator: str = ""
    source: str = ""  # for a command: the file(s) it read
    run: str = ""  # for a command: one id for every submission of one run
    message_id: str = ""  # through $process-message: the message's id and event (fhirapi.messaging)
    message_event: str = ""


@dataclass(frozen=True)
class SubmissionTarget:
    """An audit row's target: the submission, by its request id (sent back as X-Request-ID) or a fresh id."""

    pk: str


@dataclass
class Outcome:
    """What became of one entry: created, updated, unchanged or rejected, and why."""

    entry: Entry
    key: str | None = None
    status: str = ""
    stale: bool = False
    issues: list[Issue] = field(default_factory=list)
    patient_id: object = None  # whose record it joined, where known (for the submission's audit row)
    # Conditional operations (fhirapi.conditional): a conditional create that matched (`matched`: nothing
    # applied or kept) and where the resource it matched is served; a status the spec gives (412, 400).
    matched: bool = False
    location: str = ""
    http_status: int = 0
    # The latest kept version of its resource once stored (store_received), and its lastUpdated as meta shows
    # it: what the response's location and etag name (fhirapi.locations). 0 where not known.
    version: int = 0
    version_updated: object = None
    _sent: dict | None = field(default=None, repr=False)
    _reference_texts: set | None = field(default=None, repr=False)

    @property
    def resource_type(self) -> str:
        return self.entry.resource_type or "(none)"

    def as_sent(self) -> dict:
        """The entry's resource as sent (FHIR JSON), worked out once."""
        if self._sent is None:
            self._sent = self.entry.as_sent()
        return self._sent

    def keep_as(self, resource: dict) -> None:
        """Keep `resource` in place of what was sent (a document's content, kept once: mapping/letters.py)."""
        self.entry.raw = resource
        self._sent = None

    def reference_texts(self) -> set[str]:
        """Every Reference.reference in the resource as sent, found once."""
        if self._reference_texts is None:
            self._reference_texts = reference_strings(self.as_sent())
        return self._reference_texts

    def reject(self, issue: Issue) -> None:
        self.status = REJECTED
        self.issues.append(self._located(issue))

    def note(self, issue: Issue) -> None:
        """An issue that does not refuse the entry (a warning, information), located like any other."""
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
    submission: object = None  # the fhirapi.models.Submission row of an applied submission

    @property
    def atomic(self) -> bool:
        return self.bundle_type in ATOMIC_BUNDLES

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


def ingest(submission: Submission, *, organisation, channel: Channel | None = None, now=None) -> IngestReport:
    channel = channel or Channel()
    refused = _refused_bundle(submission.bundle_type, channel)
    if refused:
        audit_unread(organisation=organisation, channel=channel, issues=[refused], bundle_type=submission.bundle_type)
        raise Unreadable([refused])
    report = IngestReport(submission.bundle_type, [Outcome(entry) for entry in submission.entries])
    _check(report.outcomes)
    if report.atomic and report.errors:
        report.applied = False
        _audit_submission(report, organisation, channel)
        return report
    ctx = Context(organisation=organisation, now=now or timezone.now(), full_urls={}, describe=map_directory)
    try:
        with transaction.atomic():
            prepare(report.outcomes, ctx)  # conditional creates, updates and references; contained resources
            # The kept resources' locks, before any row is written: every submission takes them first (so none
            # waits for another's rows while holding them), and If-Match reads the versions under them.
            _lock(ctx.organisation, {split_key(o.key) for o in report.outcomes if o.key and o.status != REJECTED})
            check_if_match(report.outcomes, ctx)
            if report.atomic and report.errors:
                raise _RollBack
            _apply([o for o in report.outcomes if o.key and not o.status], ctx, channel)
            if report.atomic and report.errors:
                raise _RollBack
            _find_patients(report.outcomes, ctx)
            report.submission = _record_submission(submission, organisation, channel, ctx)
            store_received(report.outcomes, ctx, submission=report.submission, locked=True)
            _audit_submission(report, organisation, channel)
    except _RollBack:
        report.applied = False
        _audit_submission(report, organisation, channel)
    audit_identity_refusals(ctx, actor=channel.actor)  # after any rollback: IG are told whatever became of it
    note_received(organisation, ctx.now)
    return report


def _record_submission(submission: Submission, organisation, channel: Channel, ctx: Context) -> SubmissionRow:
    """The applied submission's row (one INSERT), named by every version it stores: its Provenance. A command's
    request id is its run's (the id its audit rows carry)."""
    return SubmissionRow.objects.create(
        organisation=organisation,
        received_at=ctx.now,
        actor=str(getattr(channel.actor, "email", None) or channel.actor or channel.operator or "")[:200],
        token=channel.token,
        endpoint=(channel.endpoint or channel.command)[:200],
        request_id=(channel.request_id or channel.run)[:100],
        bundle_type=submission.bundle_type or "",
        bundle_id=bundle_id_of(submission)[:200],
        message_id=channel.message_id[:200],
    )


def bundle_id_of(submission: Submission) -> str:
    """What names the Bundle, as Submission.bundle_id keeps it: its identifier as a FHIR token (`system|value`;
    `|value` when it has no system), else its id as `Bundle/<id>` (told apart: an id has no "|"), else blank."""
    if submission.identifier:
        return f"{submission.identifier_system}|{submission.identifier}"
    return f"Bundle/{submission.sent_id}" if submission.sent_id else ""


def _refused_bundle(bundle_type, channel: Channel) -> Issue | None:
    """A Bundle type this import does not take. A message is taken only from $process-message, which answers
    it with a response message: posted anywhere else it would be imported without its MessageHeader read."""
    if bundle_type == "message" and not channel.message_id:
        return error(
            "not-supported",
            "A message Bundle is processed by POST [base]/$process-message, which answers with a response message.",
            "Bundle.type",
        )
    if bundle_type is None or bundle_type in ACCEPTED_BUNDLES or bundle_type == "message":
        return None
    return error(
        "not-supported",
        f"A {bundle_type} Bundle cannot be imported: send a transaction, batch or collection.",
        "Bundle.type",
    )


def _find_patients(outcomes: list[Outcome], ctx: Context) -> None:
    """Whose record each outcome joined, from what the stages resolved (no queries)."""
    for outcome in outcomes:
        if outcome.patient_id is not None or outcome.status in ("", REJECTED) or outcome.entry.resource is None:
            continue
        if outcome.entry.resource_type == "Patient":
            outcome.patient_id = ctx.patients.get(outcome.key)
            continue
        for reference in patient_references(outcome.entry.resource):
            try:
                outcome.patient_id = ctx.patient_id(reference, "")
                break
            except Unmappable:
                continue


def _submission_detail(organisation, channel: Channel, bundle_type) -> dict:
    detail = {"organisation": organisation.ods_code, "organisation_id": organisation.pk}
    if channel.token is not None:
        token = channel.token
        detail.update(token=token.pk, token_prefix=token.prefix, token_name=token.name)
    if channel.endpoint:
        detail["endpoint"] = channel.endpoint
    if channel.command:
        detail.update(command=channel.command, operator=channel.operator, source=channel.source, run=channel.run)
    if channel.message_id:
        detail.update(message_id=channel.message_id, message_event=channel.message_event)
    detail["bundle_type"] = bundle_type or "(resource)"
    return detail


def _write_submission_audit(channel: Channel, detail: dict, patient_id=None):
    target = SubmissionTarget(pk=channel.request_id or uuid.uuid4().hex)
    # What the sender controls (the path, echoes of its body) may hold NUL, which PostgreSQL's JSON refuses.
    detail = {key: str(value).replace("\x00", "\\x00") for key, value in detail.items()}
    return audit(by=channel.actor, action=Action.FHIR_SUBMISSION, target=target, patient_id=patient_id, **detail)


def _audit_submission(report: IngestReport, organisation, channel: Channel):
    """The submission's one audit row: counts per resource type, and the patients it touched if applied."""
    detail = _submission_detail(organisation, channel, report.bundle_type)
    detail["applied"] = report.applied
    detail["entries"] = len(report.outcomes)
    for resource_type, counter in sorted(report.counts().items()):
        detail[f"count:{resource_type}"] = " ".join(f"{s}={counter[s]}" for s in STATUSES if counter[s])
    touched, refused = [], []
    for outcome in report.outcomes:
        if outcome.patient_id is not None:
            (refused if outcome.status == REJECTED or not report.applied else touched).append(str(outcome.patient_id))
    touched, refused = list(dict.fromkeys(touched)), list(dict.fromkeys(refused))
    detail["patient_count"] = len(touched)
    detail["patients"] = ",".join(touched[:PATIENTS_LISTED])
    if refused:  # named by entries that were refused (a care relationship it may not assert, say)
        detail["refused_patient_count"] = len(refused)
        detail["refused_patients"] = ",".join(refused[:PATIENTS_LISTED])
    named = set(touched) | set(refused)
    return _write_submission_audit(channel, detail, patient_id=named.pop() if len(named) == 1 else None)


def audit_unread(*, organisation, channel: Channel, issues: list[Issue], bundle_type=None):
    """A submission refused before any entry was looked at (unreadable, too large, not what the URL says):
    audited too, since it came from a valid token, with what was wrong."""
    detail = _submission_detail(organisation, channel, bundle_type)
    detail.update(applied=False, entries=0, patient_count=0, patients="")
    detail["refused"] = "; ".join(issue.diagnostics for issue in issues)[:500]
    return _write_submission_audit(channel, detail)


def audit_repeat(*, organisation, channel: Channel, entries: int, first: str):
    """A message sent again after it was processed: answered as the first time and imported again nowhere,
    audited all the same (who re-sent what, and when the first was processed)."""
    detail = _submission_detail(organisation, channel, "message")
    detail.update(applied=False, entries=entries, patient_count=0, patients="", repeat_of=first)
    return _write_submission_audit(channel, detail)


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
        elif entry.resource_type not in HANDLED_TYPES and entry.resource_type != BINARY:
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


def _apply(outcomes: list[Outcome], ctx: Context, channel: Channel) -> None:
    by_type = defaultdict(list)
    for outcome in outcomes:
        by_type[outcome.entry.resource_type].append(outcome)
    save_directory([o for kind in DIRECTORY_TYPES for o in by_type[kind]], ctx)
    save_patients(by_type["Patient"], ctx, actor=channel.actor)
    clinical = [o for o in outcomes if o.entry.resource_type not in DIRECTORY_TYPES | {"Patient"}]
    ctx.load_patients(reference for o in clinical for reference in patient_references(o.entry.resource))
    ctx.binaries = {o.key: o for o in by_type[BINARY]}  # a document's content, for its DocumentReference
    _save_entries([o for o in clinical if o.entry.resource_type in ENTRY_MAPPERS], ctx)
    save_attachments(by_type["DocumentReference"], by_type[BINARY], ctx)
    save_results(by_type["DiagnosticReport"], by_type["Observation"], ctx)
    save_care_teams(by_type["CareTeam"], ctx, token=channel.token, actor=channel.actor)
    save_consents(by_type["Consent"], ctx, actor=channel.actor)


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
        outcome.patient_id = fields.get("patient_id")
    for model, model_rows in rows.items():
        for key, upserted in upsert(model, model_rows, organisation_id=ctx.organisation.pk, now=ctx.now).items():
            owners[model, key].finish(upserted.status, stale=upserted.stale)


# What was received, as sent

# pg_advisory_xact_lock's first key: these locks are the kept resources' (see _lock).
LOCK_CLASS = 0x46484952


def store_received(
    outcomes: list[Outcome], ctx: Context, submission: SubmissionRow | None = None, *, locked: bool = False
) -> None:
    """Keep each imported resource as sent: a new version of it where its JSON (or what its urn:uuid references
    resolved to) differs from the latest held. A few queries whatever the size of the submission. `locked`: the
    caller holds these resources' locks already (`_lock`, taken by ingest before anything was written)."""
    kept = {}
    taken = [
        outcome
        for outcome in outcomes
        if outcome.status not in ("", REJECTED) and not outcome.stale and outcome.entry.resource is not None
        if outcome.key and not outcome.matched
    ]
    restricted = _restricted_patients(taken)
    for outcome in taken:
        resource = outcome.as_sent()
        texts = outcome.reference_texts()
        if outcome.resource_type == "Patient" and (outcome.patient_id in restricted or _labelled_restricted(outcome)):
            resource = {name: value for name, value in resource.items() if name not in CONTACT_DETAILS}
            texts = reference_strings(resource)
        references = {text: resolved for text in texts if (resolved := ctx.resolved(text))}
        kept[split_key(outcome.key)] = (outcome, resource, references, digest_of(resource, references))
    if not kept:
        return
    if not locked:
        _lock(ctx.organisation, kept)
    latest = _latest_versions(ctx.organisation, kept)
    rows = []
    for (resource_type, resource_id), (outcome, resource, references, digest) in sorted(kept.items()):
        version, held, updated = latest.get((resource_type, resource_id), (0, "", None))
        if held == digest:
            outcome.version, outcome.version_updated = version, updated
            continue
        outcome.version = version + 1
        outcome.version_updated = last_updated(outcome.entry.resource) or ctx.now  # as history.version_meta
        rows.append(
            {
                "organisation_id": ctx.organisation.pk,
                "resource_type": resource_type,
                "resource_id": resource_id,
                "version": version + 1,
                "received_at": ctx.now,
                "source_updated_at": last_updated(outcome.entry.resource),
                "json": resource,
                "digest": digest,
                "references": references,
                "patient_id": outcome.patient_id,
                "submission_id": submission.pk if submission is not None else None,
            }
        )
    write_rows(ReceivedResource, rows)


# What is not kept of a restricted (S-flag) patient's Patient resource, as their demographics are not (H-11).
CONTACT_DETAILS = {"address", "telecom", "contact", "_address", "_telecom"}


def _restricted_patients(outcomes) -> set:
    """Which of the patients these Patient resources stand for are restricted (one query, if any)."""
    ids = {o.patient_id for o in outcomes if o.resource_type == "Patient" and o.patient_id is not None}
    return set(Patient.objects.filter(pk__in=ids, restricted=True).values_list("pk", flat=True)) if ids else set()


def _labelled_restricted(outcome) -> bool:
    resource = outcome.entry.resource
    return bool(resource.meta and restricted_of(resource))


def _lock(organisation, keys) -> None:
    """Two imports of one resource at once would both read version n and both write n + 1. On PostgreSQL each
    takes a transaction lock per resource first, in one order (so they cannot deadlock), and the second reads
    the first's version once it commits. (SQLite runs one writer at a time.) A lock key shared by two resources
    only makes one wait for the other."""
    if connection.vendor != "postgresql":
        return
    hashes = sorted(
        {zlib.crc32(f"{organisation.pk}|{kind}|{resource_id}".encode()) % 2**31 for kind, resource_id in keys}
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, k) FROM unnest(%s::int[]) AS k", [LOCK_CLASS, hashes])


def _latest_versions(organisation, keys) -> dict[tuple[str, str], tuple[int, str, object]]:
    """(type, id) -> (version, digest, lastUpdated as meta shows it) of the latest version held of each."""
    rows = ReceivedResource.objects.newest((organisation.pk, *key) for key in keys).values_list(
        "resource_type", "resource_id", "version", "digest", "source_updated_at", "received_at"
    )
    return {
        (kind, resource_id): (version, digest, source_updated_at or received_at)
        for kind, resource_id, version, digest, source_updated_at, received_at in rows
    }


def check_if_match(outcomes: list[Outcome], ctx: Context) -> None:
    """An update sent with If-Match (request.ifMatch, or the header) applies only if the version it names is the
    latest kept of that resource (the sender's, by its id): stale or none held -> refused with 412, so a sender
    never overwrites a change it has not seen. Read under the resources' locks (taken before: `_lock`), so two
    writers of one version cannot both pass."""
    guarded = [o for o in outcomes if o.entry.if_match and o.key and not o.status]
    if not guarded:
        return
    latest = _latest_versions(ctx.organisation, {split_key(o.key) for o in guarded})
    for outcome in guarded:
        held = latest.get(split_key(outcome.key), (0, "", None))[0]
        if etag_version(outcome.entry.if_match) == held and held:
            continue
        said = f'the version held is W/"{held}"' if held else "no version of it is held"
        outcome.reject(
            error(
                "conflict",
                f"If-Match {outcome.entry.if_match} is not the latest version of {outcome.key}: {said}. Read it "
                "again and send the update against that version.",
                f"{outcome.entry.expression.removesuffix('.resource')}.request.ifMatch"
                if outcome.entry.expression.startswith("Bundle.")
                else "",
            )
        )
        outcome.http_status = 412
