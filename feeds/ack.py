"""Acknowledgements as HL7 v2 says (chapter 2, "Acknowledgment messages"), built for the message they answer.

Original mode (MSH-15 and MSH-16 both empty): one ACK with MSA-1 AA (stored: applied, held for matching, or kept
and ignored), AE (its content is wrong, with an ERR segment saying where) or AR (a type or event this feed does not
take, or a sender this feed does not recognise, or no readable MSH).

Enhanced mode (either field valued): a commit ACK first, CA when the message is safely stored (its row committed),
CR when MSH says something we will not take (type, event, sender), CE when it could not be stored or read; then,
once it has been processed, an application ACK (AA/AE/AR) — both on the same connection, the commit ACK first.
MSH-15 (accept) and MSH-16 (application) say which are wanted: AL always, NE never, ER only for an error or a
rejection, SU only on success; an empty one of the two means NE (the sender asked for the other only). A message
rejected at commit gets no application ACK: it was never processed.

The ACK's MSH swaps the message's sending and receiving application and facility, carries the message's processing
id and version, and its MSA-2 the message's control id (MSH-10). Its own MSH-15/16 are NE in enhanced mode (we ask
for no acknowledgement of an acknowledgement) and empty in original mode. ERR is the version's: ERR-1 (ELD:
segment^sequence^field^code&text&HL70357) up to 2.4; ERR-2 (ERL location), ERR-3 (HL7 error code, table 0357),
ERR-4 (severity) and ERR-8 (user message) from 2.5. Up to 2.4 the reason is also in MSA-3 (text message).
"""

import re
import secrets
from dataclasses import dataclass

from django.utils import timezone

from .segments import LONDON

DEFAULT_VERSION = "2.4"  # answering a message whose MSH-12 cannot be read
APPLICATION = "CARERECORD"  # our MSH-3 when the message did not name us in its MSH-5

# HL7 table 0357, Message error condition codes (those carerecord answers with)
SEGMENT_SEQUENCE = "100"
REQUIRED_FIELD_MISSING = "101"
DATA_TYPE_ERROR = "102"
TABLE_VALUE_NOT_FOUND = "103"
UNSUPPORTED_MESSAGE_TYPE = "200"
UNSUPPORTED_EVENT = "201"
UNKNOWN_KEY = "204"
INTERNAL_ERROR = "207"
ERROR_TEXT = {
    "0": "Message accepted",
    SEGMENT_SEQUENCE: "Segment sequence error",
    REQUIRED_FIELD_MISSING: "Required field missing",
    DATA_TYPE_ERROR: "Data type error",
    TABLE_VALUE_NOT_FOUND: "Table value not found",
    UNSUPPORTED_MESSAGE_TYPE: "Unsupported message type",
    UNSUPPORTED_EVENT: "Unsupported event code",
    UNKNOWN_KEY: "Unknown key identifier",
    INTERNAL_ERROR: "Application internal error",
}

ACCEPT, ERROR, REJECT = "AA", "AE", "AR"
COMMIT = {ACCEPT: "CA", ERROR: "CE", REJECT: "CR"}

_LOCATION = re.compile(
    r"(?P<seg>[A-Z][A-Z0-9]{2})(?:\[(?P<seq>\d+)\])?"
    r"(?:[-.](?P<field>\d+)(?:\[(?P<rep>\d+)\])?(?:\.(?P<comp>\d+)(?:\.(?P<sub>\d+))?)?)?"
)
_DEFAULT_SEPARATORS = ("|", "^~\\&")


@dataclass(frozen=True)
class Answer:
    """What the pipeline decided for one message: the application code (AA/AE/AR), whether it was refused before it
    could be taken in (then, in enhanced mode, a commit reject CR / commit error CE and no application ACK), and for
    an error where and why."""

    code: str
    reason: str = ""
    location: str = ""
    error_code: str = ""  # table 0357; blank: none for AA, 207 for AE/AR
    at_commit: bool = False


@dataclass(frozen=True)
class Sent:
    """The bits of a message's MSH an ACK needs (read from a parsed message, or salvaged from an unreadable one)."""

    separator: str = "|"
    encoding: str = "^~\\&"
    fields: tuple = ()  # MSH-3 onwards, as sent (escaped), index 0 = MSH-3

    def field(self, number: int) -> str:
        index = number - 3
        return self.fields[index] if 0 <= index < len(self.fields) else ""

    def component(self, number: int, component: int = 1) -> str:
        """Empty when the field has fewer components than asked for: an ACK is built for any MSH, however short."""
        parts = self.field(number).split(self.encoding[0])
        return parts[component - 1] if len(parts) >= component else ""

    @property
    def version(self) -> str:
        return self.component(12)

    @property
    def enhanced(self) -> bool:
        return bool(self.field(15).strip() or self.field(16).strip())


def sent_from_text(raw: str) -> Sent:
    """Whatever an ACK can use from a message's first segment, however broken the rest: the MSH fields split on its
    own field separator if it starts "MSH" and its encoding characters look usable, else defaults (and nothing)."""
    first = raw.replace("\r\n", "\r").replace("\n", "\r").lstrip().split("\r", 1)[0]
    if not first.startswith("MSH") or len(first) < 5:
        return Sent()
    separator = first[3]
    parts = first.split(separator)
    encoding = parts[1] if len(parts) > 1 else ""
    usable = len(encoding) >= 4 and len(set(separator + encoding[:4])) == 5 and not any(c.isalnum() for c in encoding)
    if separator.isalnum() or separator.isspace() or not usable:
        return Sent()
    return Sent(separator=separator, encoding=encoding, fields=tuple(parts[2:]))


def sent_from_message(message) -> Sent:
    """The same from a parsed python-hl7 message: its separators and MSH fields as sent."""
    msh = message.segment("MSH")
    separator, encoding = str(msh[1]), str(msh[2])
    return Sent(separator=separator, encoding=encoding, fields=tuple(str(field) for field in msh[3:]))


def wanted(condition: str, code: str) -> bool:
    """Whether an enhanced-mode condition (MSH-15 or MSH-16: AL, NE, ER, SU) asks for an ACK with this code."""
    condition = condition.strip().upper()
    if condition in ("", "NE"):
        return False
    if condition == "ER":
        return code != ACCEPT
    if condition == "SU":
        return code == ACCEPT
    return True  # AL, and anything unknown: answering is the safer reading


def acknowledgements(sent: Sent, answer: Answer, *, now=None, control_id=None) -> list[str]:
    """The ACK messages to send back, in order (CR-separated text, no MLLP framing): one in original mode; in enhanced
    mode the commit ACK and then the application ACK, each only if asked for (so possibly none)."""
    if not sent.enhanced:
        return [build(sent, answer.code, answer, now=now, control_id=control_id)]
    acks = []
    commit = COMMIT[answer.code] if answer.at_commit else "CA"
    if wanted(sent.field(15), answer.code if answer.at_commit else ACCEPT):
        acks.append(build(sent, commit, answer if answer.at_commit else Answer(ACCEPT), now=now, control_id=control_id))
    if not answer.at_commit and wanted(sent.field(16), answer.code):
        second = f"{control_id}-2" if control_id and acks else control_id
        acks.append(build(sent, answer.code, answer, now=now, control_id=second))
    return acks


def build(sent: Sent, code: str, answer: Answer, *, now=None, control_id=None) -> str:
    """One ACK: MSH (swapped), MSA, and ERR when the answer is not an accept."""
    separator, encoding = sent.separator, sent.encoding
    component, subcomponent = encoding[0], encoding[3] if len(encoding) > 3 else "&"
    version = sent.version or DEFAULT_VERSION
    moment = timezone.localtime(now or timezone.now(), LONDON)
    event = sent.component(9, 2)
    if version.startswith(("2.1", "2.2")):
        kind = "ACK"
    elif version == "2.3" or not event:
        kind = f"ACK{component}{event}" if event else "ACK"
    else:
        kind = f"ACK{component}{event}{component}ACK"
    msh = [
        "MSH",
        encoding,
        sent.field(5) or APPLICATION,
        sent.field(6),
        sent.field(3),
        sent.field(4),
        moment.strftime("%Y%m%d%H%M%S"),
        "",
        kind,
        control_id or _control_id(moment),
        sent.field(11) or "P",
        sent.field(12) or DEFAULT_VERSION,
    ]
    if sent.enhanced:
        msh += ["", "", "NE", "NE"]
    old = _old_style(version)
    reason = escape(answer.reason, separator, encoding)
    msa = ["MSA", code, sent.field(10)]
    if old and answer.reason and code not in (ACCEPT, "CA"):
        msa.append(reason[:80])
    segments = [separator.join(msh), separator.join(msa)]
    if code not in (ACCEPT, "CA"):
        error_code = answer.error_code or INTERNAL_ERROR
        where = _location(answer.location)
        text = ERROR_TEXT.get(error_code, "")
        if old:  # ERR-1, ELD: segment^sequence^field^code&text&HL70357
            cwe = subcomponent.join((error_code, text, "HL70357"))
            segments.append(separator.join(["ERR", component.join([*where[:3], cwe])]))
        else:  # ERR-2 location, ERR-3 HL7 error code, ERR-4 severity, ERR-8 user message
            erl = component.join(where).rstrip(component) if where[0] else ""
            code_cwe = component.join((error_code, text, "HL70357"))
            segments.append(separator.join(["ERR", "", erl, code_cwe, "E", "", "", "", reason]))
    return "\r".join(segments)


def _old_style(version: str) -> bool:
    """HL7 up to 2.4 reports the error in ERR-1 and the reason in MSA-3; 2.5 onwards in ERR-2/3/4/8."""
    match = re.match(r"2\.(\d+)", version or "")
    return bool(match) and int(match.group(1)) <= 4


def _location(location: str) -> list:
    """ "PID-7" / "OBX[3]-5" / "PID-3[2].4" → ERL components: segment id, sequence, field, repetition, component,
    subcomponent ("" where not known; the segment id may be blank when all we know is a segment's number)."""
    match = _LOCATION.match(location or "")
    if not match:
        return ["", "", "", "", "", ""]
    parts = [match["seg"], match["seq"] or "1", match["field"] or "", "", match["comp"] or "", match["sub"] or ""]
    if match["field"] and (match["rep"] or match["comp"]):
        parts[3] = match["rep"] or "1"
    return parts


def escape(value: str, separator: str = "|", encoding: str = "^~\\&") -> str:
    """Text made safe inside a field: the escape character first, then the separators (HL7 2.7.4), line breaks as
    .br (2.7.6) and other control characters dropped."""
    if not value:
        return ""
    component, repetition, esc = encoding[0], encoding[1], encoding[2]
    subcomponent = encoding[3] if len(encoding) > 3 else "&"
    table = {esc: f"{esc}E{esc}", separator: f"{esc}F{esc}", component: f"{esc}S{esc}"}
    table.update({repetition: f"{esc}R{esc}", subcomponent: f"{esc}T{esc}"})
    out = []
    for character in value:
        if character in table:
            out.append(table[character])
        elif character in "\r\n":
            out.append(f"{esc}.br{esc}")
        elif ord(character) < 32:
            continue
        else:
            out.append(character)
    return "".join(out)


def _control_id(moment) -> str:
    """A fresh MSH-10 for the ACK (HL7 wants one unique per sender): time and a random part."""
    return moment.strftime("%Y%m%d%H%M%S") + secrets.token_hex(4).upper()
