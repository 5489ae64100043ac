"""One HL7 v2 message in: kept, checked against its feed, converted to FHIR and imported whole, answered.

The order is what makes a message never lost and never half-applied (hazard H-18):
1. the Message row (raw text, type, control id, MSH-7, peer) is written and committed on its own, before anything
   is applied, so whatever happens next the message can be found, retried and replayed;
2. the feed's conditions (active, MSH-3/4, MSH-8 secret, the type and event accepted) — a refusal is AR, or kept
   and ignored (AA) as the feed says;
3. the converter (ADT or ORU) builds one FHIR transaction Bundle, or says Held (no match yet: AA, queued for IG),
   Invalid (AE naming the segment and field) or NotAccepted (as 2);
4. the Bundle is imported by fhirapi.ingest in one database transaction together with the converter's `after`
   work and the row's new status, so a message is applied whole or not at all; an entry ingest refuses is answered
   AE at the segment it came from (`Conversion.origins`), and nothing of it is kept but the Message row;
5. anything unexpected: status failed, AE 207, logged — never an exception out of here (the listener keeps going).

One AuditEvent `hl7.message` per message received (and per retry), whatever became of it. An applied message that
taught the sender's local identifier (a SourcePatientId now exists for it) retries the messages of that organisation
held for the same local identifier, oldest first, a bounded number at a time.
"""

import hashlib
import hmac
import importlib
import logging
from dataclasses import dataclass, field

import orjson
from django.db import transaction
from django.utils import timezone

from audit.names import Action
from audit.writers import audit
from fhirapi.ingest import Channel, ingest
from fhirapi.parse import Unreadable, read
from patients.models import SourcePatientId

from . import ack, metrics, segments
from .convert import Conversion, Held, Invalid, NotAccepted
from .models import Feed, Message, feed_actor

logger = logging.getLogger(__name__)
Status = Message.Status

# What an attempt writes to a Message row (_finish): its outcome, and MSH-9/10 as read unescaped.
OUTCOME_FIELDS = [
    "status", "reason", "error_location", "ack_code", "local_id", "patient", "submission", "attempts", "applied_at",
    "message_type", "control_id",
]  # fmt: skip
HELD_RETRY_LIMIT = 20  # held messages retried after one message teaches their local identifier
CONVERTERS = {"ADT": "feeds.convert.adt", "ORU": "feeds.convert.oru"}
SECRET_PREFIX = "sha256:"  # noqa: S105 (the hash scheme's name, not a secret)
# fhirapi issue codes → HL7 table 0357 (AE's ERR-3)
ISSUE_ERROR_CODES = {
    "required": ack.REQUIRED_FIELD_MISSING,
    "not-found": ack.UNKNOWN_KEY,
    "code-invalid": ack.TABLE_VALUE_NOT_FOUND,
    "value": ack.DATA_TYPE_ERROR,
    "invalid": ack.DATA_TYPE_ERROR,
    "structure": ack.DATA_TYPE_ERROR,
}


@dataclass
class Reply:
    """What to send back and what was kept. `acks`: the ACK messages to write on the connection, in order (CR-
    separated text, no MLLP framing): one in original mode; in enhanced mode the commit ACK then the application
    ACK, either left out when MSH-15/16 do not ask for it. `ack`: the first of them, "" when none is asked for.
    `message`: the Message row (None only when there was no organisation to file it under)."""

    acks: list[str]
    message: Message | None
    code: str  # the application's answer: AA, AE or AR
    status: str = ""
    retried: list = field(default_factory=list)  # held messages this one's local identifier released

    @property
    def ack(self) -> str:
        return self.acks[0] if self.acks else ""


@dataclass
class _Result:
    """What became of one attempt, before it is written to the row."""

    status: str
    answer: ack.Answer
    reason: str = ""
    location: str = ""
    local_id: str = ""
    patient_id: object = None
    submission: object = None
    learns: bool = False


def hash_secret(secret: str) -> str:
    """What Feed.shared_secret_hash stores: SHA-256 of the secret. A feed's secret is a long random string IG
    generate (not a password), so a fast hash is enough and keeps the check cheap on every message."""
    return SECRET_PREFIX + hashlib.sha256(secret.encode()).hexdigest()


def secret_matches(feed: Feed, sent: str) -> bool:
    if not feed.shared_secret_hash:
        return True
    return hmac.compare_digest(hash_secret(sent or ""), feed.shared_secret_hash)


def accepted_types(feed: Feed) -> set[str]:
    return {part.strip().upper() for part in (feed.message_types or "").split(",") if part.strip()}


def takes(feed: Feed, message_type: str) -> bool:
    """A feed's list names type^event pairs ("ADT^A01"), or a whole type ("ORU" or "ORU^*")."""
    types = accepted_types(feed)
    kind = message_type.split("^", 1)[0]
    return message_type in types or kind in types or f"{kind}^*" in types


def default_feed(organisation) -> Feed:
    """The feed an import uses when its organisation has none configured: unsaved, active, taking what carerecord
    supports (the model's default types), refusing the rest."""
    return Feed(organisation=organisation, name="import (no feed configured)")


def receive(raw, *, feed: Feed | None, organisation=None, peer: str = "", now=None, endpoint: str = "mllp") -> Reply:
    """Keep, check, apply and answer one message (see the module docstring). `feed` None with an organisation: an
    import with no feed configured (the supported types accepted); with neither, nothing can be filed (AR, logged).
    Never raises for anything in the message; raises only when the message cannot be stored (no ACK may go then)."""
    now = now or timezone.now()
    text_ = segments.decode(raw) if isinstance(raw, bytes) else str(raw)
    organisation = feed.organisation if feed is not None else organisation
    if organisation is None:
        logger.warning("HL7 message from %s with no feed: refused, not stored", peer or "an unknown peer")
        answer = ack.Answer(ack.REJECT, "No feed is configured for this connection.", "MSH", ack.INTERNAL_ERROR, True)
        return Reply(ack.acknowledgements(ack.sent_from_text(text_), answer, now=now), None, ack.REJECT, "")
    # Not stored, not acknowledged: if the row cannot be written (the database is down) this raises, and the
    # listener closes the connection without an ACK, so the sender keeps the message and sends it again.
    row = _keep(text_, feed=feed, organisation=organisation, peer=peer, now=now)
    return process(row, feed=feed, now=now, endpoint=endpoint)


def _keep(text_: str, *, feed, organisation, peer: str, now) -> Message:
    """The message's row, committed before anything is applied (its own transaction)."""
    sent = ack.sent_from_text(text_)
    stored = text_.replace("\x00", "")  # PostgreSQL text cannot hold NUL; such a message is refused anyway
    try:
        sent_at = segments.timestamp(_unescaped(sent.component(7)))
    except Invalid:
        sent_at = None
    with transaction.atomic():
        return Message.objects.create(
            feed=feed if feed is not None and feed.pk else None,
            organisation=organisation,
            received_at=now,
            peer=peer[:300],
            raw=stored,
            control_id=_unescaped(sent.field(10))[:200],
            message_type=_type_of(sent)[:30],
            version=sent.version[:20],
            sent_at=sent_at,
        )


def _unescaped(value: str) -> str:
    return value.replace("\x00", "").strip()


def _type_of(sent: ack.Sent) -> str:
    kind, event = sent.component(9, 1).upper(), sent.component(9, 2).upper()
    return f"{kind}^{event}" if event else kind


def process(row: Message, *, feed: Feed | None, now=None, endpoint: str = "mllp", cascade: bool = True) -> Reply:
    """Apply a kept message (first time, retry or replay) and write what became of it to its row; answered."""
    now = now or timezone.now()
    feed = feed if feed is not None else (row.feed or default_feed(row.organisation))
    text_ = row.raw
    try:
        message = segments.parse(text_)
        sent = ack.sent_from_message(message)
    except Invalid as error:
        message, sent = None, ack.sent_from_text(text_)
        result = _unreadable(error, sent)
    if message is not None:
        try:
            result = _attempt(message, row, feed=feed, now=now, endpoint=endpoint)
        except Exception as error:  # a bug or an outage must not stop the listener: failed, kept for a retry
            logger.exception("HL7 message %s (%s) could not be applied", row.pk, row.control_id)
            reason = f"Could not be applied: {type(error).__name__}: {error}"[:1000]
            result = _Result(Status.FAILED, ack.Answer(ack.ERROR, reason, "", ack.INTERNAL_ERROR), reason)
            try:
                _finish(row, result, feed=feed, now=now)
            except Exception:  # the database itself is failing: the row stays "received", found by replay
                logger.exception("HL7 message %s: its failure could not be recorded", row.pk)
    else:
        _finish(row, result, feed=feed, now=now)
    reply = Reply(ack.acknowledgements(sent, result.answer, now=now), row, result.answer.code, result.status)
    if cascade and result.status == Status.APPLIED and result.local_id and result.learns:
        reply.retried = retry_held(row, feed=feed, now=now)
    return reply


def _unreadable(error: Invalid, sent: ack.Sent) -> _Result:
    """No readable MSH (or encoding characters) → AR with what can be said; a malformed segment further on → AE."""
    header_broken = error.location in ("MSH", "MSH-1", "MSH-2") or not sent.fields
    code = ack.REJECT if header_broken else ack.ERROR
    sequence = error.location == "MSH" or error.location.startswith(("segment", "MSH["))  # not MSH first, or 2 MSH
    error_code = ack.SEGMENT_SEQUENCE if sequence else ack.DATA_TYPE_ERROR
    answer = ack.Answer(code, error.reason, error.location, error_code, at_commit=header_broken)
    return _Result(Status.INVALID, answer, error.reason, error.location)


def _refusal(feed: Feed, message_type: str, reason: str, error_code: str) -> _Result:
    if feed.unaccepted == Feed.Unaccepted.IGNORE:
        return _Result(Status.IGNORED, ack.Answer(ack.ACCEPT), f"Kept and ignored: {reason}")
    return _Result(Status.REFUSED, ack.Answer(ack.REJECT, reason, "MSH-9", error_code, at_commit=True), reason, "MSH-9")


def check_feed(feed: Feed, header: segments.Header) -> _Result | None:
    """The feed's conditions on the message's MSH; None when it may be applied."""
    if not feed.active:
        return _rejected("This feed is not active.", "MSH")
    if feed.sending_application and header.sending_application.upper() != feed.sending_application.upper():
        return _rejected(f"MSH-3 {header.sending_application!r} is not this feed's sending application.", "MSH-3")
    if feed.sending_facility and header.sending_facility.upper() != feed.sending_facility.upper():
        return _rejected(f"MSH-4 {header.sending_facility!r} is not this feed's sending facility.", "MSH-4")
    if not secret_matches(feed, header.security):
        return _rejected("MSH-8 does not carry this feed's shared secret.", "MSH-8")
    if not header.message_type or "^" not in header.message_type:
        reason = "MSH-9 does not say the message type and event."
        answer = ack.Answer(ack.REJECT, reason, "MSH-9", ack.REQUIRED_FIELD_MISSING, at_commit=True)
        return _Result(Status.INVALID, answer, reason, "MSH-9")
    if not takes(feed, header.message_type):
        kind = header.message_type.split("^", 1)[0]
        known = kind in CONVERTERS and any(t.split("^", 1)[0] == kind for t in accepted_types(feed))
        error_code = ack.UNSUPPORTED_EVENT if known else ack.UNSUPPORTED_MESSAGE_TYPE
        return _refusal(feed, header.message_type, f"{header.message_type} is not accepted on this feed.", error_code)
    return None


def _rejected(reason: str, location: str) -> _Result:
    return _Result(Status.REFUSED, ack.Answer(ack.REJECT, reason, location, ack.INTERNAL_ERROR, at_commit=True), reason)


def converter(message_type: str):
    """The converter module's convert() for a type, or None when carerecord has none (yet)."""
    name = CONVERTERS.get(message_type.split("^", 1)[0])
    if name is None:
        return None
    try:
        return importlib.import_module(name).convert
    except ImportError:
        logger.error("No converter module %s for %s", name, message_type)
        return None


def _attempt(message, row: Message, *, feed: Feed, now, endpoint: str) -> _Result:
    header = segments.header(message)
    row.message_type = header.message_type[:30] or row.message_type  # MSH-9 unescaped, or EVN-1's event
    row.control_id = header.control_id[:200]
    result = check_feed(feed, header)
    if result is None:
        convert = converter(header.message_type)
        try:
            if convert is None:
                raise NotAccepted(f"carerecord does not take {header.message_type}.")
            conversion = convert(message, feed)
        except NotAccepted as refused:
            result = _refusal(feed, header.message_type, refused.reason, ack.UNSUPPORTED_EVENT)
        except Held as held:
            answer = ack.Answer(ack.ACCEPT)
            result = _Result(Status.HELD, answer, held.reason, held.location, local_id=held.local_id)
        except Invalid as invalid:
            error_code = getattr(invalid, "code", "") or _error_code(invalid.reason)
            answer = ack.Answer(ack.ERROR, invalid.reason, invalid.location, error_code)
            result = _Result(Status.INVALID, answer, invalid.reason, invalid.location)
        else:
            return _apply(conversion, row, feed=feed, header=header, now=now, endpoint=endpoint)
    _finish(row, result, feed=feed, now=now)
    return result


def _error_code(reason: str) -> str:
    """A converter's Invalid may name its table 0357 code (`.code`); otherwise its words say which it is."""
    words = reason.lower()
    if any(word in words for word in ("required", "missing", "no ", "empty")):
        return ack.REQUIRED_FIELD_MISSING
    if any(word in words for word in ("unknown code", "table", "not a known")):
        return ack.TABLE_VALUE_NOT_FOUND
    return ack.DATA_TYPE_ERROR


class _NotApplied(Exception):
    def __init__(self, result: _Result):
        super().__init__(result.reason)
        self.result = result


def _apply(conversion: Conversion, row: Message, *, feed: Feed, header, now, endpoint: str) -> _Result:
    """The Bundle imported, the converter's after-work done and the row marked applied, in one transaction."""
    actor = feed_actor(feed)
    channel = Channel(
        actor=actor,
        command="hl7",
        endpoint=endpoint,
        source=row.peer,
        run=f"hl7-message-{row.pk}",
        message_id=header.control_id[:200],
        message_event=header.message_type,
    )
    try:
        with transaction.atomic():
            submission = read(orjson.dumps(conversion.bundle))
            report = ingest(submission, organisation=feed.organisation, channel=channel, now=now)
            if not report.applied:
                raise _NotApplied(_refused_entry(report, conversion))
            for work in conversion.after:
                work(feed.organisation, actor)
            patient_id = conversion.patient_id or _patient_of(report)
            result = _Result(
                Status.APPLIED,
                ack.Answer(ack.ACCEPT),
                local_id=conversion.local_id,
                patient_id=patient_id,
                submission=report.submission,
                learns=conversion.learns,
            )
            _finish(row, result, feed=feed, now=now)
            return result
    except _NotApplied as refused:
        result = refused.result
    except Unreadable as unreadable:  # the converter built something fhirapi cannot read: ours to fix
        reason = f"The converted message could not be read as FHIR: {unreadable}"[:1000]
        result = _Result(Status.FAILED, ack.Answer(ack.ERROR, reason, "", ack.INTERNAL_ERROR), reason)
    result.local_id = result.local_id or conversion.local_id
    result.patient_id = result.patient_id or conversion.patient_id
    _finish(row, result, feed=feed, now=now)
    return result


def _refused_entry(report, conversion: Conversion) -> _Result:
    """The first entry ingest refused, answered at the segment it came from."""
    for index, outcome in enumerate(report.outcomes):
        errors = [issue for issue in outcome.issues if issue.is_error]
        if errors:
            issue = errors[0]
            location = conversion.origins.get(index, "")
            reason = f"{issue.diagnostics} ({issue.expression})" if issue.expression else issue.diagnostics
            error_code = ISSUE_ERROR_CODES.get(issue.code, ack.INTERNAL_ERROR)
            answer = ack.Answer(ack.ERROR, reason[:1000], location, error_code)
            return _Result(Status.INVALID, answer, reason[:1000], location)
    reason = "The converted message was not applied."
    return _Result(Status.FAILED, ack.Answer(ack.ERROR, reason, "", ack.INTERNAL_ERROR), reason)


def _patient_of(report):
    named = [o.patient_id for o in report.outcomes if o.patient_id is not None]
    patients = [o.patient_id for o in report.outcomes if o.patient_id is not None and o.resource_type == "Patient"]
    return (patients or named or [None])[0]


def _finish(row: Message, result: _Result, *, feed: Feed, now) -> None:
    """The row's new status and its audit row, together (inside the apply's transaction when applied)."""
    row.status = result.status
    row.reason = result.reason[:5000]
    row.error_location = (result.location or result.answer.location)[:50]
    row.ack_code = result.answer.code
    row.local_id = (result.local_id or row.local_id)[:200]
    if result.patient_id is not None:
        row.patient_id = result.patient_id
    row.submission = result.submission if result.status == Status.APPLIED else row.submission
    row.attempts += 1
    if result.status == Status.APPLIED:
        row.applied_at = now
    with transaction.atomic():
        row.save(update_fields=OUTCOME_FIELDS)  # never the raw text: retention may have cleared it meanwhile
        audit(
            by=feed_actor(feed),
            action=Action.HL7_MESSAGE,
            target=row,
            patient_id=row.patient_id,
            feed=feed.pk or "",
            organisation=row.organisation.ods_code,
            message_type=row.message_type,
            control_id=row.control_id,
            status=row.status,
            ack=row.ack_code,
            reason=row.reason[:500],
            location=row.error_location,
            attempt=row.attempts,
        )
    transaction.on_commit(lambda: metrics.counted(row))  # counted once it is kept, not if rolled back


def retry_held(row: Message, *, feed: Feed, now) -> list[Message]:
    """Messages held for the local identifier this applied message carries, retried now that the record knows whom
    it means (a SourcePatientId for it exists): oldest first, at most HELD_RETRY_LIMIT, each in its own
    transaction; one that is still held stays held."""
    # Nearly always none is held: their ids first (a plain index probe, ~4× cheaper to build than the rows with
    # their feeds), the rows only when there are some.
    held_ids = list(
        Message.objects.filter(organisation_id=row.organisation_id, local_id=row.local_id, status=Status.HELD)
        .exclude(pk=row.pk)
        .order_by("received_at", "pk")
        .values_list("pk", flat=True)[:HELD_RETRY_LIMIT]
    )
    if not held_ids:
        return []
    known = SourcePatientId.objects.filter(organisation=row.organisation, resource_id=f"Patient/{row.local_id}")
    if not known.exists():
        return []
    waiting = (
        Message.objects.filter(pk__in=held_ids, status=Status.HELD)
        .select_related("feed__organisation", "organisation")
        .order_by("received_at", "pk")
    )
    retried = []
    for held in waiting:
        if not held.raw:
            continue
        process(held, feed=held.feed or feed, now=now, endpoint="retry", cascade=False)
        retried.append(held)
    return retried
