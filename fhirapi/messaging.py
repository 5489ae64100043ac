"""FHIR messaging: `POST [base]/$process-message`, synchronous, one response message per message.

A message is a Bundle of type `message` whose first entry is a MessageHeader: what happened (`event[x]`), who
sent it (`source`, `sender`) and what it is about (`focus`). carerecord understands the events in EVENTS (the
UK's message definitions for results, documents, referrals, bookings, attendances, vaccinations and
dispensing), each with the resource types its focus may be. Everything else in the Bundle is imported through
`fhirapi.ingest` exactly as a transaction is: all or nothing, under the token's organisation; the MessageHeader
itself is not a record entry.

What comes back (FHIR's rules for $process-message; docs/adr/0007):
- a body that is not a message (unreadable, not a Bundle of type message, no readable MessageHeader with an
  id to answer): 400 OperationOutcome, like any unreadable submission. A response message answers a
  MessageHeader (`response.identifier` is its id): without one there is nothing to answer.
- a message processed: 200 and a response message (new id, timestamp, first entry a MessageHeader with
  `response.identifier` = the request's MessageHeader.id and `response.code`), `ok` when imported, else
  `fatal-error` (nothing imported), with `response.details` pointing to an OperationOutcome in the Bundle
  whenever there is anything to say (errors, warnings).
- a database failure or lock timeout: 503 and a `transient-error` response message (nothing imported, nothing
  remembered): sending the same message again is then the right thing to do.

Idempotent by message id (Bundle.identifier.value, else MessageHeader.id) per sending organisation: the
response of a message imported is kept (fhir.ProcessedMessage), and the same message sent again is given that
response, imports nothing and is audited as a repeat. The same id with other content is a fatal-error naming
the conflict (a message id names one message). A message that failed is not remembered: nothing of it was
kept, so sending it again (corrected, under the same id or another) is processed afresh.
"""

import contextlib
import hashlib
import json
import uuid
from dataclasses import dataclass, field, replace

from django.db import IntegrityError, OperationalError, transaction
from django.utils import timezone
from fhir.resources.R4B.bundle import Bundle

from .ingest import Channel, audit_repeat, audit_unread, ingest
from .mapping import HANDLED_TYPES
from .models import ProcessedMessage
from .outcome import UNPRINTABLE, Issue, error, operation_outcome
from .parse import Entry, Submission, Unreadable
from .references import key_of
from .systems import ODS_CODE, SNOMED

HEADER = "MessageHeader"
RESPONSE_CODES = ("ok", "transient-error", "fatal-error")
MAX_MESSAGE_ID = 200  # ProcessedMessage.message_id; a longer (or unstorable) id is kept as its SHA-256
RETRY_AFTER_SECONDS = "30"

# Code systems of the UK's message events.
UK_MESSAGE_EVENT = "https://fhir.nhs.uk/CodeSystem/message-event"  # UK Core MessageHeader events (NHS England)
BARS_MESSAGE_EVENT = "https://fhir.nhs.uk/CodeSystem/message-events-bars"  # Booking and Referral Standard
BARS_MESSAGE_REASON = "https://fhir.nhs.uk/CodeSystem/message-reason-bars"


@dataclass(frozen=True)
class Pattern:
    """An NHS message pattern carerecord understands: what it is, and what its focus may be."""

    name: str
    focus: frozenset


RESULTS = Pattern("pathology and other results", frozenset({"DiagnosticReport", "Observation"}))
DOCUMENTS = Pattern("documents: discharge and transfer of care", frozenset({"Composition", "DocumentReference"}))
REFERRALS = Pattern("referrals", frozenset({"ServiceRequest"}))
BOOKINGS = Pattern("bookings", frozenset({"Appointment", "ServiceRequest"}))
ENCOUNTERS = Pattern("attendances and admissions", frozenset({"Encounter"}))
VACCINATIONS = Pattern("vaccinations", frozenset({"Immunization"}))
DISPENSING = Pattern("dispensing", frozenset({"MedicationDispense"}))

# (system, code) -> pattern. Requests only: carerecord asks nothing of anyone, so a response event (BaRS
# booking-response, servicerequest-response) has nothing here to answer, and neither has an order (a pathology
# test request: its focus is a ServiceRequest, which RESULTS does not take).
EVENTS = {
    (SNOMED, "371528001"): RESULTS,  # "Pathology report": NHS England's pathology FHIR messages (IG 0.1, 0.2)
    (UK_MESSAGE_EVENT, "unsolicited-observations"): RESULTS,
    (UK_MESSAGE_EVENT, "document"): DOCUMENTS,
    (UK_MESSAGE_EVENT, "document-notification"): DOCUMENTS,
    (UK_MESSAGE_EVENT, "referral"): REFERRALS,
    (BARS_MESSAGE_EVENT, "servicerequest-request"): REFERRALS,
    (UK_MESSAGE_EVENT, "appointment"): BOOKINGS,
    (BARS_MESSAGE_EVENT, "booking-request"): BOOKINGS,
    (UK_MESSAGE_EVENT, "encounter"): ENCOUNTERS,
    (UK_MESSAGE_EVENT, "vaccinations"): VACCINATIONS,
    (UK_MESSAGE_EVENT, "dispense-notification"): DISPENSING,
}


@dataclass
class Answer:
    """What $process-message answers: a response message (`response`), or an OperationOutcome (`issues`)."""

    status: int
    response: dict | None = None
    issues: list[Issue] = field(default_factory=list)
    headers: dict = field(default_factory=dict)

    def bundle(self) -> Bundle:
        return Bundle.model_validate(self.response)


@dataclass
class Message:
    """What the request says about itself: its header, its id and event, and its other entries."""

    header: object  # the MessageHeader resource
    header_index: int
    message_id: str
    event: str  # "system|code", or the eventUri
    entries: list[Entry]  # every entry but the MessageHeader
    digest: str
    sent: Submission  # the Bundle as read: its identifier and id name it in its Provenance


def process(submission: Submission, *, organisation, channel: Channel, endpoint: str, now=None) -> Answer:
    """Process one message from `organisation`; `endpoint` is this server's $process-message URL."""
    now = now or timezone.now()
    message, refused = _read(submission)
    if refused:
        audit_unread(organisation=organisation, channel=channel, issues=refused, bundle_type=submission.bundle_type)
        return Answer(400, issues=refused)
    channel = replace(channel, message_id=message.message_id, message_event=message.event[:200])
    reply = Reply(message, organisation, endpoint, now)
    try:
        held = _held(organisation, message.message_id)
        if held is not None:
            return _again(held, message, organisation, channel, reply)
        problems = _problems(message)
        if problems:
            audit_unread(organisation=organisation, channel=channel, issues=problems, bundle_type="message")
            return Answer(200, reply.build("fatal-error", problems))
        return _import(message, organisation, channel, reply)
    except OperationalError as exc:
        return _transient(exc, organisation, channel, reply)


# Reading the message


def _read(submission: Submission) -> tuple[Message | None, list[Issue]]:
    """The message, or why this is no message that can be answered (400)."""
    if submission.bundle_type != "message":
        what = f"a {submission.bundle_type} Bundle" if submission.bundle_type else "a single resource"
        expression = "Bundle.type" if submission.bundle_type else ""
        return None, [error("invalid", f"$process-message takes a Bundle of type message, not {what}.", expression)]
    headers = [entry for entry in submission.entries if entry.resource_type == HEADER]
    if not headers and submission.entries and submission.entries[0].issues:
        return None, submission.entries[0].issues  # unreadable where the MessageHeader should be
    if not headers:
        return None, [
            error(
                "structure",
                "A message starts with a MessageHeader (its first entry): there is none, so nothing says what the "
                "message is or whom to answer.",
                "Bundle.entry[0]",
            )
        ]
    header_entry = headers[0]
    if header_entry.resource is None:
        return None, header_entry.issues or [error("required", "The MessageHeader entry has no resource.")]
    header = header_entry.resource
    if not header.id:
        expression = f"{header_entry.expression}.id"
        return None, [error("required", "The MessageHeader needs an id: the response message answers it.", expression)]
    entries = [entry for entry in submission.entries if entry is not header_entry]
    message = Message(
        header=header,
        header_index=header_entry.index,
        message_id=_storable(submission.identifier or header.id),
        event=_event_of(header),
        entries=entries,
        digest=_digest(submission.entries),
        sent=submission,
    )
    return message, []


def _event_of(header) -> str:
    if header.eventCoding is not None:
        return f"{header.eventCoding.system or ''}|{header.eventCoding.code or ''}"
    return header.eventUri or ""


def _storable(message_id: str) -> str:
    """The message id as kept: as sent, unless too long or holding what the database cannot store."""
    if len(message_id) <= MAX_MESSAGE_ID and not UNPRINTABLE.search(message_id):
        return message_id
    return "sha256:" + hashlib.sha256(message_id.encode("utf-8", "surrogatepass")).hexdigest()


def _digest(entries: list[Entry]) -> str:
    """What a message says, as sent (each entry's fullUrl and resource): the same message sent again has the
    same digest, and any change to any entry another. The Bundle's own timestamp and meta are left out (a
    re-send may restamp them)."""
    content = [
        [entry.full_url, entry.as_sent() if entry.resource is not None else entry.resource_type] for entry in entries
    ]
    encoded = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(encoded.encode("utf-8", "surrogatepass")).hexdigest()


def _problems(message: Message) -> list[Issue]:
    """Why carerecord cannot do what this message asks (fatal-error, nothing imported), before anything is."""
    header, at = message.header, f"Bundle.entry[{message.header_index}].resource"
    problems = []
    if message.header_index != 0:
        problems.append(
            error("structure", "The MessageHeader must be the first entry of a message.", "Bundle.entry[0]")
        )
    problems += [
        error("structure", "A message has one MessageHeader: this is another.", entry.expression)
        for entry in message.entries
        if entry.resource_type == HEADER
    ]
    if header.response is not None:
        problems.append(
            error(
                "not-supported",
                "This is a response message: carerecord sends no requests, so it has nothing to answer here.",
                f"{at}.response",
            )
        )
    pattern = EVENTS.get(tuple(message.event.split("|", 1))) if header.eventCoding is not None else None
    if pattern is None:
        element = "eventCoding" if header.eventCoding is not None else "eventUri"
        problems.append(
            error(
                "not-supported",
                f"The event {message.event!r} is not one carerecord understands, so it cannot know what the message "
                "asks of it. Supported: " + ", ".join(f"{system}|{code}" for system, code in EVENTS) + ".",
                f"{at}.{element}",
            )
        )
    problems += _reason_problems(header, at)
    problems += _focus_problems(message, pattern, at)
    return problems


def _reason_problems(header, at: str) -> list[Issue]:
    """A message that asks for something to be deleted is refused: nothing is deleted by a feed (a partner
    marks an entry entered-in-error, or cancels it, and sends it again)."""
    codings = (header.reason.coding or []) if header.reason is not None else []
    if any(coding.system == BARS_MESSAGE_REASON and coding.code == "delete" for coding in codings):
        return [
            error(
                "not-supported",
                "carerecord deletes nothing on a message: send the resource again with its status "
                "(entered-in-error, cancelled, revoked).",
                f"{at}.reason",
            )
        ]
    return []


def _focus_problems(message: Message, pattern: Pattern | None, at: str) -> list[Issue]:
    """Each focus must be an entry of the message, of a type the event's pattern takes and the record holds."""
    focus = message.header.focus or []
    if not focus:
        return [error("required", "The message names no focus: what it is about must be in it.", f"{at}.focus")]
    problems, addresses = [], _entries_by_address(message.entries)
    for index, reference in enumerate(focus):
        target = _entry_for(reference.reference, addresses)
        expression = f"{at}.focus[{index}]"
        if target is None:
            problems.append(
                error(
                    "not-found",
                    f"The focus {reference.reference or '(no reference)'!r} is not an entry of the message.",
                    expression,
                )
            )
        elif pattern is not None and (
            target.resource_type not in pattern.focus or target.resource_type not in HANDLED_TYPES
        ):
            problems.append(
                error(
                    "not-supported",
                    f"A {target.resource_type} is not what carerecord takes as the focus of {pattern.name} "
                    f"({', '.join(sorted(pattern.focus & HANDLED_TYPES)) or 'none yet'}).",
                    expression,
                )
            )
    return problems


def _entries_by_address(entries: list[Entry]) -> dict[str, Entry]:
    """Each entry by what a focus may call it: its fullUrl, and <Type>/<id> (the first entry to claim one)."""
    found = {}
    for entry in entries:
        if entry.full_url:
            found.setdefault(entry.full_url, entry)
        if entry.resource is not None and entry.resource.id:
            found.setdefault(f"{entry.resource_type}/{entry.resource.id}", entry)
    return found


def _entry_for(reference: str | None, entries: dict[str, Entry]) -> Entry | None:
    """The entry a focus reference names: by its fullUrl, or as <Type>/<id> (relative or absolute)."""
    if not reference:
        return None
    return entries.get(reference) or entries.get(key_of(reference) or "")


# Processing it


def _import(message: Message, organisation, channel: Channel, reply: "Reply") -> Answer:
    """Import the message's entries as one transaction, remembering the answer in the same transaction. The
    row is claimed first: a second copy arriving at the same time waits on it (PostgreSQL's unique index),
    then finds the first one's answer and is given it as a repeat."""
    claimed = False
    try:
        with transaction.atomic():
            held = ProcessedMessage.objects.create(
                organisation=organisation,
                message_id=message.message_id,
                event=message.event[:200],
                outcome="processing",
                response={},
            )
            claimed = True
            return _apply(held, message, organisation, channel, reply)
    except IntegrityError:
        if claimed:  # not the claim: a failure of the import itself
            raise
    other = _held(organisation, message.message_id)
    if other is None:  # the other copy failed, and is not remembered: this one may be sent again
        raise OperationalError("the same message was being processed at the same time")
    return _again(other, message, organisation, channel, reply)


def _apply(held: ProcessedMessage, message: Message, organisation, channel: Channel, reply: "Reply") -> Answer:
    """Ingest as a transaction; the answer is kept when it was applied, and the row let go when not."""
    submission = replace(message.sent, entries=message.entries)  # the message id is the channel's
    try:
        report = ingest(submission, organisation=organisation, channel=channel, now=reply.now)
    except Unreadable as exc:  # audited by ingest
        held.delete()
        return Answer(200, reply.build("fatal-error", exc.issues))
    if not report.applied:
        held.delete()
        issues = [error("processing", "The message was not applied: nothing was changed."), *_issues(report)]
        return Answer(200, reply.build("fatal-error", issues))
    response = reply.build("ok", _issues(report))
    held.outcome, held.response = "ok", {"message": response, "digest": message.digest}
    held.save(update_fields=["outcome", "response"])
    return Answer(200, response)


def _held(organisation, message_id: str) -> ProcessedMessage | None:
    return ProcessedMessage.objects.filter(organisation=organisation, message_id=message_id).first()


def _issues(report) -> list[Issue]:
    return [issue for outcome in report.outcomes for issue in outcome.issues]


def _again(held: ProcessedMessage, message: Message, organisation, channel: Channel, reply: "Reply") -> Answer:
    """A message id already processed: the same message is given its response again, other content is refused."""
    stored = held.response
    if stored.get("digest") == message.digest:
        audit_repeat(
            organisation=organisation,
            channel=channel,
            entries=len(message.entries),
            first=f"{held.received_at.isoformat()} {held.outcome}",
        )
        return Answer(200, stored["message"])
    source = (
        "Bundle.identifier"
        if message.message_id != message.header.id
        else f"Bundle.entry[{message.header_index}].resource.id"
    )
    conflict = error(
        "business-rule",
        f"The message id {message.message_id!r} was processed on "
        f"{timezone.localtime(held.received_at):%d %B %Y at %H:%M} with other content. A message id names one "
        "message: send new content under a new id.",
        source,
    )
    audit_unread(organisation=organisation, channel=channel, issues=[conflict], bundle_type="message")
    return Answer(200, reply.build("fatal-error", [conflict]))


def _transient(exc: OperationalError, organisation, channel: Channel, reply: "Reply") -> Answer:
    """The database failed or a lock timed out: nothing was imported or remembered; the sender may try again."""
    issue = Issue(
        "error", "transient", f"The message could not be processed now ({type(exc).__name__}): send it again later."
    )
    with contextlib.suppress(OperationalError):  # the database is what failed: the request log keeps the request id
        audit_unread(organisation=organisation, channel=channel, issues=[issue], bundle_type="message")
    headers = {"Retry_After": RETRY_AFTER_SECONDS}
    return Answer(503, reply.build("transient-error", [issue]), headers=headers)


# The response message


@dataclass
class Reply:
    """Builds the response message to one request: source carerecord, destination the sender."""

    message: Message
    organisation: object
    endpoint: str
    now: object

    def build(self, code: str, issues: list[Issue]) -> dict:
        """The response message: `code` one of RESPONSE_CODES, `issues` (if any) its OperationOutcome."""
        header_id, outcome_id = str(uuid.uuid4()), str(uuid.uuid4())
        header = {
            "resourceType": HEADER,
            "id": header_id,
            **self._event(),
            "destination": [self._destination()],
            "source": {"name": "carerecord", "endpoint": self.endpoint},
            "response": {"identifier": self.message.header.id, "code": code},
        }
        entries = [{"fullUrl": f"urn:uuid:{header_id}", "resource": header}]
        if issues:
            header["response"]["details"] = {"reference": f"urn:uuid:{outcome_id}"}
            outcome = json.loads(operation_outcome(issues).model_dump_json())
            entries.append({"fullUrl": f"urn:uuid:{outcome_id}", "resource": {**outcome, "id": outcome_id}})
        bundle_id = str(uuid.uuid4())
        bundle = {
            "resourceType": "Bundle",
            "id": bundle_id,
            "identifier": {"system": "urn:ietf:rfc:3986", "value": f"urn:uuid:{bundle_id}"},
            "type": "message",
            "timestamp": self.now.isoformat(),
            "entry": entries,
        }
        return json.loads(Bundle.model_validate(bundle).model_dump_json())

    def _event(self) -> dict:
        header = self.message.header
        if header.eventCoding is not None:
            return {"eventCoding": json.loads(header.eventCoding.model_dump_json())}
        return {"eventUri": header.eventUri}

    def _destination(self) -> dict:
        """The sender, as its token names it (the source of everything it sends), at the endpoint it gave."""
        receiver = {
            "identifier": {"system": ODS_CODE, "value": self.organisation.ods_code},
            "display": self.organisation.name,
        }
        return {"endpoint": self.message.header.source.endpoint, "receiver": receiver}


def supported_events() -> list[tuple[str, str, str]]:
    """(system, code, pattern) for every event understood: the CapabilityStatement's and the docs' list."""
    return [(system, code, pattern.name) for (system, code), pattern in EVENTS.items()]
