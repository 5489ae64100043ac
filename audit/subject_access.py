"""Who has looked at a patient's record, grouped the way a patient reads it: the body of the subject access letter.

The access log has a row per page view; a patient asking "who has looked at my record?" wants to know who, when
and why. So rows are grouped per day and per person (their role at the time, their organisation and the basis
they looked on), with the first and last time that day and the pages they saw, in words. Refused attempts are
kept apart: nothing of the record was shown to them, but the patient is told they were made.

`group` is a plain function over rows as dicts, tested without a database; `history_of` feeds it a patient's rows
(`AccessEvent.objects.values(*FIELDS)`), so a history of thousands of rows is one query read in chunks, plus one
for the organisations' names and one for emergency accesses' reasons when there were any.
"""

import datetime
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from itertools import groupby

from django.conf import settings
from django.utils import timezone

from . import pages, reasons, subjects
from .export import CHUNK_SIZE  # rows read at a time, as the CSV export reads them
from .models import AccessBasis, AccessEvent, AccessOutcome, AuditEvent
from .names import Action

FIELDS = (
    "at",
    "user_id",
    "user_email",
    "professional_name",
    "professional_role",
    "organisation_code",
    "outcome",
    "basis",
    "reason",
    "page",
)
# What each basis means, as the letter explains it before the list (every one, whether or not it appears).
EXPLANATIONS = (
    (
        reasons.BASES[AccessBasis.CARE_TEAM],
        "The person works in a team that is caring for you (for example your GP practice, or a hospital ward you "
        "were on), and the record shows that team's involvement in your care. This is how almost everyone who "
        "looks at your record is allowed to.",
    ),
    (
        reasons.BASES[AccessBasis.BREAK_GLASS],
        "The person was not in a team recorded as caring for you, so they had to say why they needed to see your "
        "record, confirm it, and were allowed in for a few hours only. We give the reason they chose. Every "
        "emergency access is checked afterwards by our information governance team.",
    ),
    (
        reasons.BASES[AccessBasis.IG_ADMIN],
        "Our information governance team looked up your details to do their work: for example to answer a request "
        "you made, to act on your objection to sharing, or to check an emergency access. They do not see your "
        "health record there.",
    ),
    (
        reasons.SEARCH,
        "The person searched for a patient and you were among the results, which show your name, date of birth, NHS "
        "number and GP practice. They did not open your record.",
    ),
    (
        reasons.LIST,
        "You were on a list of the patients a team is caring for, or of those a professional had recently opened. "
        "The list shows your name, date of birth, NHS number and GP practice; it does not open your record.",
    ),
)
NOT_RECORDED = "not recorded"  # the role, on rows written before roles were kept: never guessed from today's


@dataclass
class Visit:
    """One person's looks at the record on one day, on one basis (or their refused attempts)."""

    day: datetime.date
    person: str
    role: str
    organisation_code: str
    basis: str  # in words: "Care team", "Search (no record opened)", "Refused"
    basis_code: str
    first: datetime.datetime  # local time
    last: datetime.datetime
    pages: list[str] = field(default_factory=list)  # in words, in the order first seen
    reasons: list[str] = field(default_factory=list)  # why refused, or the emergency access's reason, in words
    count: int = 0
    user_id: int | None = None
    organisation: str = ""  # the organisation's name, when the directory knows the code
    is_system: bool = False  # a partner's clinical system reading with no person named

    @property
    def refused(self) -> bool:
        return self.basis_code == "refused"


@dataclass
class History:
    """The grouped history: allowed looks and refused attempts, each oldest first."""

    visits: list[Visit]
    refused: list[Visit]
    events: int  # rows read

    @property
    def days(self) -> list[tuple[datetime.date, list[Visit]]]:
        return [(day, list(visits)) for day, visits in groupby(self.visits, key=lambda visit: visit.day)]

    @property
    def refused_days(self) -> list[tuple[datetime.date, list[Visit]]]:
        return [(day, list(visits)) for day, visits in groupby(self.refused, key=lambda visit: visit.day)]

    @property
    def bases(self) -> set[str]:
        """The bases the letter's visits were on (codes, with "search" and "list"), for its explanations."""
        return {visit.basis_code for visit in self.visits}


def _person(row, organisation: str) -> tuple[str, bool]:
    """(who, is a system): the professional's name, else the account's address, else the organisation's clinical
    system (a partner system's read names no person), else someone not signed in."""
    if row["professional_name"]:
        return row["professional_name"], False
    if row["user_email"]:
        return row["user_email"], False
    if row["organisation_code"]:
        return f"{organisation or row['organisation_code']}'s clinical system", True
    return "Someone not signed in", False


def _basis_code(row) -> str:
    if row["outcome"] == AccessOutcome.REFUSED:
        return "refused"
    if row["basis"] == AccessBasis.NONE:
        if row["page"].startswith("search:"):
            return "search"
        if row["page"].startswith("my-patients"):
            return "list"
    return row["basis"]


def group(
    rows: Iterable[Mapping],
    *,
    organisation_names: Callable[[set[str]], Mapping[str, str]] = lambda codes: {},
    break_glass_reasons: Callable[[set, datetime.datetime, datetime.datetime], Iterable[tuple]] = lambda *a: (),
) -> History:
    """Group access rows (oldest first) per local day and person, role, organisation and basis.

    `organisation_names` is asked once, for every code seen. `break_glass_reasons(user_ids, earliest, latest)` is
    asked once if there were emergency accesses, for those started in that window (looking back an emergency
    access's length before `earliest`) (user id, when, reason code):
    each break-glass visit carries the reason of the person's latest one started before it ended."""
    groups: dict[tuple, Visit] = {}
    first_rows: dict[tuple, Mapping] = {}  # each visit's first row, to name its person once names are known
    events = 0
    for row in rows:
        events += 1
        local = timezone.localtime(row["at"])
        basis_code = _basis_code(row)
        who = row["user_id"] or row["user_email"] or row["professional_name"] or ""
        key = (local.date(), who, row["organisation_code"], row["professional_role"], basis_code)
        visit = groups.get(key)
        if visit is None:
            visit = groups[key] = Visit(
                day=local.date(),
                person="",
                role=row["professional_role"],
                organisation_code=row["organisation_code"],
                basis=reasons.basis_name(basis=row["basis"], outcome=row["outcome"], page=row["page"]),
                basis_code=basis_code,
                first=local,
                last=local,
                user_id=row["user_id"],
            )
            first_rows[key] = row
        visit.first, visit.last = min(visit.first, local), max(visit.last, local)
        visit.count += 1
        name = pages.page_name(row["page"])
        if name not in visit.pages:
            visit.pages.append(name)
        if row["reason"] and basis_code == "refused":
            words = reasons.reason_words(row["reason"])
            if words not in visit.reasons:
                visit.reasons.append(words)
    names = organisation_names({code for _, _, code, _, _ in groups if code}) or {}
    emergency = [visit for visit in groups.values() if visit.basis_code == AccessBasis.BREAK_GLASS]
    started = []
    if emergency:
        window = (min(v.first for v in emergency), max(v.last for v in emergency))
        started = sorted(break_glass_reasons({v.user_id for v in emergency}, *window), key=lambda start: start[1])
    for key, visit in groups.items():
        visit.organisation = names.get(visit.organisation_code, "")
        visit.person, visit.is_system = _person(first_rows[key], visit.organisation)
        if not visit.role and not visit.is_system:
            visit.role = NOT_RECORDED
        if visit.basis_code == AccessBasis.BREAK_GLASS:
            earlier = [reason for user_id, at, reason in started if user_id == visit.user_id and at <= visit.last]
            if earlier:
                visit.reasons.append(reasons.reason_words(earlier[-1]))
    visits = sorted(groups.values(), key=lambda visit: (visit.first, visit.last))
    return History(
        visits=[visit for visit in visits if not visit.refused],
        refused=[visit for visit in visits if visit.refused],
        events=events,
    )


def history_of(patient_id, start: datetime.datetime | None = None, end: datetime.datetime | None = None) -> History:
    """The patient's own accesses from `start` (inclusive) to `end` (exclusive), either open, grouped. Rows are
    the patient's by id (every row about a patient in the record carries it), on the (patient, at) index."""
    events = AccessEvent.objects.filter(patient_id=patient_id)
    if start:
        events = events.filter(at__gte=start)
    if end:
        events = events.filter(at__lt=end)
    rows = events.order_by("at", "pk").values(*FIELDS).iterator(chunk_size=CHUNK_SIZE)

    def break_glass_reasons(user_ids, earliest, latest):
        """The audit trail's own record of each emergency access started (`break-glass.started`), on the
        indexed time column, looking back an access's length before the first emergency look."""
        started = AuditEvent.objects.filter(
            action=Action.BREAK_GLASS_STARTED,
            patient_id=patient_id,
            actor_id__in=[user_id for user_id in user_ids if user_id is not None],
            at__gte=earliest - datetime.timedelta(hours=settings.BREAK_GLASS_HOURS),
            at__lte=latest,
        )
        return [
            (actor, at, detail.get("reason", ""))
            for actor, at, detail in started.values_list("actor_id", "at", "detail")
        ]

    return group(rows, organisation_names=subjects.organisation_names, break_glass_reasons=break_glass_reasons)
