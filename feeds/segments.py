"""Reading HL7 v2: one message parsed with python-hl7 after its framing is made regular, values read by position,
dates and times as Europe/London local times.

Everything that reads a message goes through here, so that an absent field, a field with fewer components than
expected, or an escape sequence means the same thing everywhere: `text()` never raises for what is merely absent
(it answers ""), and what cannot be read at all (no MSH, wrong encoding characters, a malformed segment, a date
that is no date) raises `feeds.convert.Invalid` naming where, for the AE's ERR segment.

Paths are HL7's own positions: `"PID.5.1"` is PID field 5, component 1 (the family name); `"PID.3[2].4"` the
second repetition of PID-3, component 4; `"OBX[3].5"` the third OBX's field 5; `"PID.3.4.1"` a subcomponent.
"""

import contextlib
import datetime
import functools
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import hl7
from hl7.util import unescape

from feeds.errors import Invalid

LONDON = ZoneInfo("Europe/London")

_SEGMENT_ID = re.compile(r"[A-Z][A-Z0-9]{2}\Z")
_POSITION_OR_SEGMENT = re.compile(r"(?P<seg>[A-Z][A-Z0-9]{2})(?:\[(?P<rep>\d+)\])?\Z")
_POSITION = re.compile(r"(?P<n>\d+)(?:\[(?P<rep>\d+)\])?\Z")
# YYYY[MM[DD[HH[MM[SS[.S[S[S[S]]]]]]]]][+/-ZZZZ] (HL7 DTM / TS component 1)
_DTM = re.compile(
    r"(?P<y>\d{4})(?:(?P<mo>\d{2})(?:(?P<d>\d{2})(?:(?P<h>\d{2})(?:(?P<mi>\d{2})(?:(?P<s>\d{2})(?:\.(?P<f>\d{1,4}))?)?)?)?)?)?"
    r"(?P<tz>[+-]\d{4})?\Z"
)
NULL = '""'  # HL7's explicit null: "the sender says this is now empty" (not merely absent)


def normalise(raw: str | bytes) -> str:
    """One message's text with segments separated by carriage returns, as HL7 puts them on the wire: files and test
    material use newlines (CR LF, LF), and trailing whitespace or blank lines mean nothing."""
    if isinstance(raw, bytes):
        raw = decode(raw)
    lines = re.split(r"\r\n|\n|\r", raw)
    return "\r".join(line.rstrip(" \t") for line in lines if line.strip())


def decode(raw: bytes) -> str:
    """UTF-8 (HL7's preferred character set from 2.8, and ASCII's superset); else Windows-1252, which the UK's older
    systems send (a pound sign, an accented name) and which decodes any byte, so nothing is lost to a decode error."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace")


def parse(raw: str | bytes) -> hl7.Message:
    """One message, parsed. Raises Invalid when it cannot be read as HL7 v2: no MSH first, encoding characters that
    are not four (five from 2.7) distinct punctuation characters, a segment whose name is not three letters/digits,
    or a second MSH (one message per frame)."""
    text_ = normalise(raw)
    if not text_.startswith("MSH"):
        raise Invalid("The message does not start with an MSH segment.", "MSH")
    if len(text_) < 8:
        raise Invalid("The MSH segment is truncated: no encoding characters.", "MSH-2")
    separator = text_[3]
    end = text_.find(separator, 4)
    encoding = text_[4:end] if end != -1 else text_[4:].split("\r", 1)[0]
    check_encoding_characters(separator, encoding)
    for number, segment in enumerate(text_.split("\r"), start=1):
        name = segment.split(separator, 1)[0]
        if not _SEGMENT_ID.match(name):
            raise Invalid(f"Segment {number} is malformed: {name[:20]!r} is not a segment name.", f"segment {number}")
        if name == "MSH" and number > 1:
            raise Invalid(f"Segment {number} is a second MSH: one message per frame.", "MSH[2]")
    try:
        return hl7.parse(text_)
    except Exception as error:  # python-hl7 raises several kinds; any of them means "cannot be read"
        raise Invalid(f"The message cannot be parsed: {error}", "MSH") from error


def check_encoding_characters(separator: str, encoding: str) -> None:
    """MSH-1 and MSH-2: the field separator and the component, repetition, escape and subcomponent characters (and
    the truncation character from 2.7), all distinct and none a letter, digit, space or segment terminator."""
    characters = separator + encoding
    if len(encoding) not in (4, 5):
        raise Invalid(f"MSH-2 must hold four encoding characters (five from v2.7), not {encoding!r}.", "MSH-2")
    if len(set(characters)) != len(characters):
        raise Invalid(f"The encoding characters {characters!r} are not distinct.", "MSH-2")
    if any(c.isalnum() or c.isspace() for c in characters):
        raise Invalid(f"The encoding characters {characters!r} include a letter, digit or space.", "MSH-2")


def split(raw: str | bytes) -> list[str]:
    """The messages in a file: a batch file (FHS/BHS ... BTS/FTS) or plain concatenated messages, segments
    separated by CR or newlines. Each message comes back as its own text (CR-separated); file and batch headers
    are dropped. Lines before the first MSH cannot belong to a message: raised as Invalid."""
    messages: list[list[str]] = []
    for number, line in enumerate(normalise(raw).split("\r"), start=1):
        name = line[:3]
        if name in ("FHS", "BHS", "BTS", "FTS"):
            continue
        if name == "MSH":
            messages.append([line])
        elif not messages:
            raise Invalid(f"Line {number} ({name!r}) comes before any MSH segment.", f"segment {number}")
        else:
            messages[-1].append(line)
    return ["\r".join(lines) for lines in messages]


# --- reading values ---------------------------------------------------------------------------------------------


def segments(message: hl7.Message, name: str) -> list:
    """Every segment of that name, in order (none: an empty list, where python-hl7 raises KeyError). The message's
    segments are indexed by name on the first call and the index kept on the message: a converter reads PID and
    MSH fields dozens of times, and each scan rebuilt every segment's name (messages are never changed once
    parsed)."""
    index = getattr(message, "_carerecord_by_name", None)
    if index is None:
        index = {}
        for segment_ in message:
            index.setdefault(str(segment_[0]), []).append(segment_)
        message._carerecord_by_name = index
    return list(index.get(name, ()))


def segment(message: hl7.Message, name: str, occurrence: int = 1):
    """The segment of that name (the first, or the nth), or None."""
    found = segments(message, name)
    return found[occurrence - 1] if len(found) >= occurrence else None


def _leaf(node, index: int):
    """The index-th (1-based) child of a python-hl7 container, or the node itself for index 1 when it is a plain
    string (a field with no repetitions, a repetition with no components): HL7's "a missing level is the first"."""
    if node is None:
        return None
    if isinstance(node, str):
        return node if index == 1 else None
    return node[index - 1] if index <= len(node) else None


@functools.lru_cache(maxsize=4096)
def _path(path: str) -> tuple[str, int, tuple[tuple[int, int], ...]]:
    """ "PID[2].3[2].4.1" -> ("PID", 2, ((3, 2), (4, 1), (1, 1))): segment, its occurrence, then each position with
    its repetition (only a field repeats). Cached: converters read the same few paths of every message (the
    bench's profile showed this parse among the hottest functions)."""
    parts = path.strip().replace("-", ".").split(".")
    name, occurrence = "", 1
    head = _POSITION_OR_SEGMENT.match(parts[0])
    if head and head["seg"]:
        name, occurrence = head["seg"], int(head["rep"] or 1)
        parts = parts[1:]
    positions = []
    for part in parts:
        found = _POSITION.match(part)
        if not found:
            raise ValueError(f"not an HL7 path: {path!r}")
        positions.append((int(found["n"]), int(found["rep"] or 1)))
    return name, occurrence, tuple(positions)


def _locate(where, path: str):
    """The node (still escaped) at path within a message, segment or repetition, or None when absent."""
    name, occurrence, positions = _path(path)
    node = where
    if isinstance(where, hl7.Message):
        if not name:
            raise ValueError(f"a path into a message starts with a segment: {path!r}")
        node = segment(where, name, occurrence)
    if isinstance(node, hl7.Segment) and positions:
        (number, repetition), positions = positions[0], positions[1:]
        if str(node[0]) in ("MSH", "BHS", "FHS") and number <= 2:
            return str(node[number]) if number < len(node) else None  # the separators themselves: never split
        node = _leaf(node[number] if number < len(node) else None, repetition)
    for number, _ in positions[:2]:
        node = _leaf(node, number)
    return node


def _first_leaf(node) -> str:
    while node is not None and not isinstance(node, str):
        node = _leaf(node, 1)
    return node or ""


def _blank(node) -> bool:
    if node is None or isinstance(node, str):
        return not node
    return all(_blank(child) for child in node)


def raw_value(where, path: str) -> str:
    """The value at path as sent (escape sequences kept), "" when absent; a deeper level collapses to its first
    (PID-5 read as a whole gives its first component, as HL7 reads an element at a higher level)."""
    return _first_leaf(_locate(where, path))


def text(where, path: str) -> str:
    """The value at path, unescaped (\\F\\ \\S\\ \\T\\ \\R\\ \\E\\, \\Xhh\\, .br line breaks as "\\n"),
    stripped; "" when absent or HL7's explicit null (""). `where`: a message, a segment, or a repetition from
    repetitions() (then the path is component[.subcomponent])."""
    value = raw_value(where, path)
    if not value or value == NULL:
        return ""
    name, _, positions = _path(path)
    if isinstance(where, hl7.Segment):
        name = str(where[0])
    if name in ("MSH", "BHS", "FHS") and positions and positions[0][0] <= 2:
        return value  # the separators themselves
    if where.esc in value:
        with contextlib.suppress(ValueError, IndexError):  # a malformed hex escape: the value kept as sent
            value = unescape(where, value)
    return value.replace("\r", "\n").strip()


def is_null(where, path: str) -> bool:
    """Whether the sender sent HL7's explicit null ("") there: "delete what you hold", unlike absent ("keep it")."""
    return raw_value(where, path) == NULL


def repetitions(where, path: str) -> list:
    """The non-empty repetitions of a field (PID-3's identifiers, PV1-7's doctors), each read with
    text(rep, "4.1"); an absent or empty field: []."""
    name, occurrence, positions = _path(path)
    node = segment(where, name, occurrence) if isinstance(where, hl7.Message) else where
    if node is None or not positions:
        return []
    number = positions[0][0]
    if number >= len(node):
        return []
    field = node[number]
    reps = [child if isinstance(child, hl7.Repetition) else field.create_repetition([child]) for child in field]
    return [rep for rep in reps if not _blank(rep)]


# --- dates and times --------------------------------------------------------------------------------------------


def _dtm(value: str, location: str):
    value = (value or "").strip()
    if not value or value == NULL:
        return None
    match = _DTM.match(value)
    if not match:
        raise Invalid(f"{value!r} is not an HL7 date/time (YYYYMMDD[HHMM[SS]]).", location)
    try:
        datetime.datetime(
            int(match["y"]),
            int(match["mo"] or 1),
            int(match["d"] or 1),
            int(match["h"] or 0),
            int(match["mi"] or 0),
            int(match["s"] or 0),
        )
    except ValueError as error:
        raise Invalid(f"{value!r} is not a real date/time: {error}.", location) from error
    return match


def _aware(match) -> datetime.datetime:
    fraction = match["f"] or ""
    naive = datetime.datetime(
        int(match["y"]),
        int(match["mo"] or 1),
        int(match["d"] or 1),
        int(match["h"] or 0),
        int(match["mi"] or 0),
        int(match["s"] or 0),
        int(fraction.ljust(6, "0")) if fraction else 0,
    )
    if match["tz"]:
        sign = -1 if match["tz"][0] == "-" else 1
        offset = datetime.timedelta(hours=int(match["tz"][1:3]), minutes=int(match["tz"][3:5])) * sign
        return naive.replace(tzinfo=datetime.timezone(offset)).astimezone(LONDON)
    # Local London time without an offset; at the autumn change's repeated hour, the first (BST) is taken.
    return naive.replace(tzinfo=LONDON)


def timestamp(value: str, location: str = "") -> datetime.datetime | None:
    """An HL7 date/time (TS/DTM) with at least the hour, as an aware datetime in Europe/London (an offset, if sent,
    is honoured). None when empty, or when it is only a date (a date is never given a made-up time: use date() or
    partial_date()). Raises Invalid (at location) when it is no date/time."""
    match = _dtm(value, location)
    if match is None or match["h"] is None:
        return None
    return _aware(match)


def date(value: str, location: str = "") -> datetime.date | None:
    """The calendar date of an HL7 date or date/time (a DT such as a birth date, or a TS's date), or None when
    empty or less precise than a day. Raises Invalid when it is no date."""
    match = _dtm(value, location)
    if match is None or match["d"] is None:
        return None
    if match["h"] is not None and match["tz"]:
        return _aware(match).date()
    return datetime.date(int(match["y"]), int(match["mo"]), int(match["d"]))


def partial_date(value: str, location: str = "") -> str | None:
    """A FHIR date or dateTime at the precision sent: "2013", "2013-02", "2013-02-11", or a dateTime with London's
    offset ("2013-02-11T10:00:52+00:00"; FHIR needs seconds and an offset once there is a time, so an hour or
    minute precision gets :00 seconds). None when empty; Invalid when no date."""
    match = _dtm(value, location)
    if match is None:
        return None
    if match["h"] is None:
        return "-".join(part for part in (match["y"], match["mo"], match["d"]) if part)
    moment = _aware(match)
    if match["f"]:
        return moment.isoformat(timespec="milliseconds")
    return moment.isoformat(timespec="seconds")


# --- the header -------------------------------------------------------------------------------------------------


def message_type(message: hl7.Message) -> str:
    """MSH-9 as "TYPE^EVENT" ("ADT^A01", "ORU^R01"); the event from EVN-1 when an old (2.2/2.3) sender leaves
    MSH-9.2 empty; just "TYPE" (an ACK) when there is none."""
    kind = text(message, "MSH.9.1").upper()
    event = text(message, "MSH.9.2").upper() or text(message, "EVN.1").upper()
    return f"{kind}^{event}" if event else kind


@dataclass(frozen=True)
class Header:
    """What MSH says about a message: who sent it to whom, what it is, and how it wants to be acknowledged."""

    sending_application: str
    sending_facility: str
    receiving_application: str
    receiving_facility: str
    sent_at: str  # MSH-7 as sent
    security: str  # MSH-8
    message_type: str  # "ADT^A01"
    control_id: str  # MSH-10
    processing_id: str  # MSH-11
    version: str  # MSH-12
    accept_ack: str  # MSH-15: AL, NE, ER, SU; "" = original mode
    application_ack: str  # MSH-16


def header(message: hl7.Message) -> Header:
    """The MSH fields the pipeline and the ACK need, read once."""
    return Header(
        sending_application=text(message, "MSH.3.1"),
        sending_facility=text(message, "MSH.4.1"),
        receiving_application=text(message, "MSH.5.1"),
        receiving_facility=text(message, "MSH.6.1"),
        sent_at=text(message, "MSH.7.1"),
        security=text(message, "MSH.8"),
        message_type=message_type(message),
        control_id=text(message, "MSH.10"),
        processing_id=text(message, "MSH.11.1"),
        version=text(message, "MSH.12.1"),
        accept_ack=text(message, "MSH.15").upper(),
        application_ack=text(message, "MSH.16").upper(),
    )
