"""Results a clinician can scan: the latest result of each test grouped by the report it came in, abnormal first,
and a test's trend, alone or beside another test of its panel.

Abnormal (`abnormality`) is one rule for every results view: the source flagged it (High, Low, Abnormal; HH, LL
and AA arrive as those), its interpretation says critical, or the value is a number outside its numeric
reference range (the source's range, in the value's own unit). Ordering never hides: every test is in exactly one
group, abnormal or not. Every query starts from the access decision (sharing.record's, through visible()).
"""

import datetime
import re
from dataclasses import dataclass

from django.utils import timezone

from patients.models import Observation, Patient, Result

from . import record
from .access import Decision

FLAGGED, CRITICAL, ABOVE, BELOW = "flagged", "critical", "above", "below"
# "Critical high", "critical value"; never "non-critical" or "not critical".
_CRITICAL = re.compile(r"(?<!non-)(?<!non )(?<!not )\bcritical\b", re.IGNORECASE)
OTHER_TESTS = "Other tests"


def abnormality(observation) -> str:
    """Why a value is abnormal ("" when it is not): FLAGGED by the source, CRITICAL by its interpretation, or
    ABOVE / BELOW its numeric reference range though the source did not flag it."""
    if observation.flag:
        return FLAGGED
    if _CRITICAL.search(observation.interpretation or ""):
        return CRITICAL
    value = observation.value
    if value is not None:
        if observation.reference_high is not None and value > observation.reference_high:
            return ABOVE
        if observation.reference_low is not None and value < observation.reference_low:
            return BELOW
    return ""


def is_abnormal(observation) -> bool:
    return bool(abnormality(observation))


@dataclass
class Row:
    """One test's latest result in a panel; `own_date` when it was taken on another day than its report says."""

    observation: Observation
    abnormality: str
    own_date: datetime.datetime | None = None

    @property
    def abnormal(self):
        return bool(self.abnormality)


@dataclass
class Panel:
    """The report a group of latest results came in (its name, date and source), or, for tests sent on their own
    (vital signs, a single observation), none: "Other tests", each row with its own date and source."""

    report: Result | None
    rows: list[Row]

    @property
    def title(self):
        return self.report.name if self.report else OTHER_TESTS

    @property
    def abnormal_count(self):
        return sum(row.abnormal for row in self.rows)

    @property
    def date(self):
        return self.report.effective_at if self.report else max(_dates(self.rows), default=None)


def _dates(rows):
    return [row.observation.effective_at for row in rows if row.observation.effective_at is not None]


def _newest_first(moment: datetime.datetime | None):
    """A sort key: newest first, undated last."""
    return (moment is None, -moment.timestamp() if moment else 0)


def panels(latest: list[Observation]) -> list[Panel]:
    """The latest result of each test (`record.latest_by_test`), grouped by the report each came in.

    Panels with an abnormal value first, then newest first (undated last), "Other tests" after the reports of its
    kind; inside a panel, abnormal values first, then in the order the report gave them (its others: newest first).
    """
    groups: dict[int | None, list[Observation]] = {}
    for observation in latest:
        report = observation.result
        groups.setdefault(report.pk if report.kind == Result.Kind.REPORT else None, []).append(observation)
    built = []
    for key, members in groups.items():
        report = members[0].result if key is not None else None
        rows = [Row(o, abnormality(o), _own_date(o, report)) for o in members]
        if report:
            rows.sort(key=lambda row: (not row.abnormal, row.observation.pk))
        else:
            rows.sort(
                key=lambda row: (not row.abnormal, _newest_first(row.observation.effective_at), row.observation.name)
            )
        built.append(Panel(report=report, rows=rows))
    built.sort(
        key=lambda panel: (not panel.abnormal_count, panel.report is None, _newest_first(panel.date), panel.title)
    )
    return built


def _own_date(observation, report) -> datetime.datetime | None:
    if report is None or observation.effective_at is None:
        return None
    if report.effective_at is None or timezone.localdate(observation.effective_at) != timezone.localdate(
        report.effective_at
    ):
        return observation.effective_at
    return None


@dataclass
class Trend:
    """One test's visible results: `history` newest first (undated last), `dated` oldest first (the chart's)."""

    history: list[Observation]
    dated: list[Observation]

    @property
    def test(self):
        """The newest dated result, or (none dated) the last recorded."""
        return self.history[0]

    @property
    def first_dated(self):
        return self.dated[0] if self.dated else None

    @property
    def undated(self):
        return len(self.history) - len(self.dated)


def trend(patient: Patient, decision: Decision, code: str) -> Trend | None:
    """A test's trend, or None when the viewer may see no result of it."""
    history = record.test_history(patient, decision, code) if code else []
    if not history:
        return None
    dated = [observation for observation in reversed(history) if observation.effective_at is not None]
    return Trend(history=history, dated=dated)


@dataclass
class Choice:
    code: str
    name: str


def compare_choices(patient: Patient, decision: Decision, test: Observation) -> list[Choice]:
    """The other tests of the report `test` came in (those with a number, so a chart), in the report's order:
    what its trend offers to "compare with". One query."""
    choices = {}
    siblings = (
        record.observations(patient, decision)
        .filter(result_id=test.result_id, value__isnull=False)
        .exclude(code__in=("", test.code))
        .order_by("id")
        .values_list("code", "name")
    )
    for code, name in siblings:
        choices.setdefault(code, Choice(code=code, name=name))
    return list(choices.values())


def both_newest_first(first: Trend, second: Trend) -> list[Observation]:
    """Every result of two tests in one list, newest first (undated last): the two-test chart's table."""
    return sorted(first.history + second.history, key=lambda o: (_newest_first(o.effective_at), o.name))
