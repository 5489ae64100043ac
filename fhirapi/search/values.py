"""A search criterion's values: tokens, dates with their prefixes and precision, and the FHIR code systems
the statuses are given in; the 400 a value that cannot be answered truthfully gets (`Invalid`)."""

import datetime
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import (
    Q,
)

from ..outcome import Issue, error

SP = "http://hl7.org/fhir/SearchParameter/"
CONDITION_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
CONDITION_VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
CONDITION_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
ALLERGY_CLINICAL = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"
ALLERGY_VERIFICATION = "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification"


# --- a criterion's values ----------------------------------------------------------------------------------


class Invalid(Exception):
    """A search that cannot be answered truthfully as asked: answered 400 with this issue."""

    def __init__(self, issue: Issue):
        super().__init__(issue.diagnostics)
        self.issue = issue


def invalid(diagnostics: str, name: str) -> Invalid:
    return Invalid(error("invalid", diagnostics, name))


def unsupported(diagnostics: str, name: str) -> Invalid:
    return Invalid(error("not-supported", diagnostics, name))


@dataclass(frozen=True)
class Token:
    system: str | None  # None: any system; "": no system (`|code`)
    code: str | None  # None: any code in the system (`system|`)


def parse_token(text: str, name: str) -> Token:
    if "|" not in text:
        return Token(None, unescape(text))
    system, _, code = text.partition("|")
    if not system and not code:
        raise invalid(f"{name}: give a code, system|code, |code or system|.", name)
    return Token(unescape(system), unescape(code) if code else None)


def unescape(text: str) -> str:
    return text.replace("\\,", ",").replace("\\|", "|").replace("\\$", "$").replace("\\\\", "\\")


DATE_PATTERN = re.compile(
    r"(?P<year>\d{4})(?:-(?P<month>\d{2})(?:-(?P<day>\d{2})"
    r"(?:T(?P<hour>\d{2}):(?P<minute>\d{2})(?::(?P<second>\d{2})(?P<fraction>\.\d{1,9})?)?"
    r"(?P<zone>Z|[+-]\d{2}:\d{2})?)?)?)?"
)
PREFIXES = ("eq", "ne", "lt", "gt", "le", "ge", "sa", "eb")


@dataclass(frozen=True)
class DateValue:
    prefix: str
    low: datetime.datetime  # the value's range: [low, high)
    high: datetime.datetime


def _london():
    return ZoneInfo(settings.TIME_ZONE)


def parse_date(text: str, name: str) -> DateValue:
    prefix = text[:2] if text[:2].isalpha() else "eq"
    body = text[2:] if text[:2].isalpha() else text
    if prefix == "ap":
        raise unsupported(f"{name}: the prefix ap (approximately) is not supported; use ge and le.", name)
    if prefix not in PREFIXES:
        raise invalid(f"{name}: unknown prefix {prefix!r} (eq, ne, lt, gt, le, ge, sa, eb).", name)
    match = DATE_PATTERN.fullmatch(body.replace(" ", "+"))  # an unencoded "+" in the zone arrives as a space
    if match is None:
        raise invalid(f"{name}: {body!r} is not a FHIR date (YYYY, YYYY-MM, YYYY-MM-DD, or with a time).", name)
    try:
        low, high = _range(match)
    except (ValueError, OverflowError):
        raise invalid(f"{name}: {body!r} is not a date that exists.", name) from None
    return DateValue(prefix, low, high)


def _range(match) -> tuple[datetime.datetime, datetime.datetime]:
    parts = match.groupdict()
    year, month, day = int(parts["year"]), int(parts["month"] or 1), int(parts["day"] or 1)
    if parts["hour"] is None:
        start = datetime.datetime(year, month, day, tzinfo=_london())
        if parts["day"]:
            end = datetime.datetime.combine(start.date() + datetime.timedelta(days=1), datetime.time(), _london())
        elif parts["month"]:
            end = datetime.datetime(year + month // 12, month % 12 + 1, 1, tzinfo=_london())
        else:
            end = datetime.datetime(year + 1, 1, 1, tzinfo=_london())
        return start, end
    zone = parts["zone"]
    if zone is None:
        tzinfo = _london()
    elif zone == "Z":
        tzinfo = datetime.UTC
    else:
        sign = 1 if zone[0] == "+" else -1
        tzinfo = datetime.timezone(sign * datetime.timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6])))
    second = int(parts["second"] or 0)
    fraction = parts["fraction"] or ""
    micro = int((fraction[1:] + "000000")[:6]) if fraction else 0
    start = datetime.datetime(year, month, day, int(parts["hour"]), int(parts["minute"]), second, micro, tzinfo)
    if fraction:
        step = datetime.timedelta(microseconds=1)
    elif parts["second"]:
        step = datetime.timedelta(seconds=1)
    else:
        step = datetime.timedelta(minutes=1)
    return start, start + step


def date_q(value: DateValue, start: str, end: str | None = None) -> Q:
    """Entries whose date (a point at `start`, or the period [start, end] with no end = still open) matches
    the value as FHIR's prefixes say. No date, no match, whatever the prefix."""
    low, high = value.low, value.high
    s = start
    has = Q(**{f"{s}__isnull": False})
    if end is None:
        point = {
            "eq": Q(**{f"{s}__gte": low, f"{s}__lt": high}),
            "ne": Q(**{f"{s}__lt": low}) | Q(**{f"{s}__gte": high}),
            "gt": Q(**{f"{s}__gte": high}),
            "sa": Q(**{f"{s}__gte": high}),
            "lt": Q(**{f"{s}__lt": low}),
            "eb": Q(**{f"{s}__lt": low}),
            "ge": Q(**{f"{s}__gte": low}),
            "le": Q(**{f"{s}__lt": high}),
        }
        return has & point[value.prefix]
    e = end
    open_ = Q(**{f"{e}__isnull": True})
    closed = Q(**{f"{e}__isnull": False})
    within = Q(**{f"{s}__gte": low}) & closed & Q(**{f"{e}__lt": high})
    period = {
        "eq": within,
        "ne": ~within,
        "gt": open_ | Q(**{f"{e}__gte": high}),
        "ge": open_ | Q(**{f"{e}__gte": low}),
        "lt": Q(**{f"{s}__lt": low}),
        "le": Q(**{f"{s}__lt": high}),
        "sa": Q(**{f"{s}__gte": high}),
        "eb": closed & Q(**{f"{e}__lt": low}),
    }
    return has & period[value.prefix]
