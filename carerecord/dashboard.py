"""IG's dashboard, the admin index: what needs action, each count linking to the queue that lists it, and a chart
of accesses and break glass per organisation over the last weeks.

Every count is the same rule as its queue's default filter (the queues' own functions and filters are used, not
copied), so the number on a tile is what its link lists. Counts stop at COUNT_CAP ("more than 10,000"). Nothing
here names a patient. The chart's figures are counts per organisation and week, cached for CHART_CACHE_SECONDS:
a grouped scan of the access log's last weeks is too dear for every page view, and holds no patient data.
"""

import datetime
from dataclasses import dataclass, field

from django.conf import settings
from django.core.cache import cache
from django.db.models import Count, Q
from django.db.models.functions import TruncDate
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode

from audit.models import AccessEvent, AccessOutcome
from bulk.models import DeadLetter, Job
from directory.models import Organisation
from feeds.models import Message
from feeds.retention import NEEDS_ACTION as MESSAGES_NEEDING_ACTION
from optout import queue as objections
from optout.models import Objection
from patients import demographics
from patients.models import Patient
from sharing import alerts
from sharing.models import BreakGlass, EntryProblem, Involvement
from sharing.queue import NEEDS_REVIEW, UNREVIEWED, review_overdue

COUNT_CAP = 10_000
CHART_WEEKS = 8
CHART_ORGANISATIONS = 6  # the busiest by accesses; the rest are summed as "Other organisations"
CHART_CACHE_SECONDS = 300
OTHERS = "Other organisations"


def capped_count(queryset) -> int:
    """At most COUNT_CAP + 1 rows counted (a tile says "more than" past the cap), never a scan of everything."""
    return queryset.order_by()[: COUNT_CAP + 1].count()


@dataclass(frozen=True)
class Link:
    text: str
    url: str
    count: int


@dataclass(frozen=True)
class Tile:
    title: str
    count: int
    url: str
    what: str  # what the count is, in words
    links: list[Link] = field(default_factory=list)
    note: str = ""

    @property
    def over_cap(self) -> bool:
        return self.count > COUNT_CAP


def _url(name, **query) -> str:
    url = reverse(name)
    return f"{url}?{urlencode(query)}" if query else url


def _objections(today) -> Tile:
    waiting = objections.needs_action(Objection.objects.all())
    count = capped_count(waiting)
    late = capped_count(objections.overdue(Objection.objects.all(), today=today))
    oldest = waiting.order_by("received_at").values_list("received_at", flat=True).first()
    days = settings.OPTOUT_RESPONSE_DAYS
    note = f"Response target: {days} days."
    if oldest is not None:
        age = (today - timezone.localdate(oldest)).days
        note = f"The oldest was received {age} day{'s' if age != 1 else ''} ago. " + note
    return Tile(
        "Objections to sharing",
        count,
        _url("admin:optout_objection_changelist", queue="needs-action"),
        "open (received or verified, awaiting a decision)",
        [Link(f"Overdue (more than {days} days)", _url("admin:optout_objection_changelist", queue="overdue"), late)],
        note,
    )


def _break_glass() -> Tile:
    pending = BreakGlass.objects.filter(review_outcome__in=NEEDS_REVIEW)
    return Tile(
        "Emergency access (break glass)",
        capped_count(pending),
        _url("admin:sharing_breakglass_changelist", status="open"),
        "to review (not yet reviewed, or follow-up needed)",
    )


def _asserted_relationships(now) -> Tile:
    return Tile(
        "Relationships asserted by partner systems",
        capped_count(Involvement.objects.filter(UNREVIEWED | review_overdue(now))),
        _url("admin:sharing_involvement_changelist", review="needed"),
        "to review (from a partner system and not reviewed, or review overdue)",
    )


def _privacy_alerts(today) -> Tile:
    return Tile(
        "Privacy alerts",
        len(alerts.alerts_for(today)),
        _url("admin:sharing_privacyalert_changelist", day=today.isoformat()),
        "today (unusual volumes, same family name, no care relationship)",
    )


def _data_quality() -> Tile:
    conflicting = Patient.objects.filter(
        Q(pk__in=demographics.conflicting_patients().values("pk"))
        | Q(pk__in=demographics.identity_refused_patients().values("pk"))
    )
    return Tile(
        "Data-quality conflicts",
        capped_count(conflicting),
        _url("admin:patients_patient_changelist", data_quality="conflicts"),
        "patients whose sources disagree, or whose id a partner tried to move",
    )


def _entry_problems() -> Tile:
    return Tile(
        "Problems reported with entries",
        capped_count(EntryProblem.objects.filter(status=EntryProblem.Status.OPEN)),
        _url("admin:sharing_entryproblem_changelist", status__exact=EntryProblem.Status.OPEN),
        "open (not yet passed on to the source organisation)",
    )


def _hl7_messages() -> Tile:
    return Tile(
        "Hospital feed messages (HL7 v2)",
        capped_count(Message.objects.filter(status__in=MESSAGES_NEEDING_ACTION)),
        _url("admin:feeds_message_changelist", queue="needs-action"),
        "need action (held for matching, invalid or failed)",
    )


def _dead_letters() -> Tile:
    return Tile(
        "Bulk loads that failed (dead letters)",
        capped_count(DeadLetter.objects.filter(status=Job.Status.DEAD)),
        _url("admin:bulk_deadletter_changelist"),
        "to send again after a fix, or to follow up with the sender",
    )


def tiles(user, *, now=None) -> list[Tile]:
    """The tiles this user may follow: each only with view permission on the queue it links to."""
    now = now or timezone.now()
    today = timezone.localdate(now)
    offered = [
        ("optout.view_objection", lambda: _objections(today)),
        ("sharing.view_breakglass", _break_glass),
        ("sharing.view_involvement", lambda: _asserted_relationships(now)),
        ("audit.view_accessevent", lambda: _privacy_alerts(today)),
        ("patients.view_patient", _data_quality),
        ("sharing.view_entryproblem", _entry_problems),
        ("feeds.view_message", _hl7_messages),
        ("bulk.view_deadletter", _dead_letters),
    ]
    return [make() for permission, make in offered if user.has_perm(permission)]


# --- the chart ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Series:
    """One organisation's row of the chart: accesses and break glass per week, oldest week first."""

    name: str
    code: str
    accesses: list[int]
    break_glass: list[int]

    @property
    def total(self) -> int:
        return sum(self.accesses)


@dataclass(frozen=True)
class Chart:
    weeks: list[datetime.date]  # each week's Monday (Europe/London), oldest first
    series: list[Series]

    @property
    def largest(self) -> int:
        return max((count for row in self.series for count in row.accesses), default=0)


def _weeks(today, count) -> list[datetime.date]:
    monday = today - datetime.timedelta(days=today.weekday())
    return [monday - datetime.timedelta(weeks=back) for back in range(count - 1, -1, -1)]


def _by_week_and_organisation(queryset, at_field, code_field, weeks) -> dict[tuple[str, int], int]:
    """{(ODS code, week index): count}, from one query grouped by day (a local date on both databases: a
    week truncation differs between them), folded into weeks here."""
    start = timezone.make_aware(datetime.datetime.combine(weeks[0], datetime.time.min))
    rows = (
        queryset.filter(**{f"{at_field}__gte": start})
        .annotate(day=TruncDate(at_field, tzinfo=timezone.get_current_timezone()))
        .values(code_field, "day")
        .annotate(n=Count("pk"))
        .order_by()
    )
    counts: dict[tuple[str, int], int] = {}
    for row in rows:
        index = (row["day"] - weeks[0]).days // 7
        if 0 <= index < len(weeks):
            key = (row[code_field], index)
            counts[key] = counts.get(key, 0) + row["n"]
    return counts


def _build_chart(today) -> Chart:
    weeks = _weeks(today, CHART_WEEKS)
    allowed = AccessEvent.objects.filter(outcome=AccessOutcome.ALLOWED).exclude(organisation_code="")
    accesses = _by_week_and_organisation(allowed, "at", "organisation_code", weeks)
    emergencies = _by_week_and_organisation(BreakGlass.objects.all(), "started_at", "organisation_code", weeks)
    totals: dict[str, int] = {}
    for (code, _), n in accesses.items():
        totals[code] = totals.get(code, 0) + n
    for code, _ in emergencies:
        totals.setdefault(code, 0)
    busiest = sorted(totals, key=lambda code: (-totals[code], code))
    shown, rest = busiest[:CHART_ORGANISATIONS], busiest[CHART_ORGANISATIONS:]
    names = dict(Organisation.objects.filter(ods_code__in=shown).values_list("ods_code", "name"))

    def row(codes, name, code):
        return Series(
            name,
            code,
            [sum(accesses.get((c, i), 0) for c in codes) for i in range(len(weeks))],
            [sum(emergencies.get((c, i), 0) for c in codes) for i in range(len(weeks))],
        )

    series = [row([code], names.get(code, code), code) for code in shown]
    if rest:
        series.append(row(rest, OTHERS, ""))
    return Chart(weeks, series)


def chart(*, today=None) -> Chart:
    """Accesses allowed and break glass started, per organisation (by the ODS code the rows kept) and week, over
    the last CHART_WEEKS weeks including this one; a week with none is a zero, never a gap."""
    today = today or timezone.localdate()
    key = f"dashboard-chart:{today.isoformat()}:{CHART_WEEKS}"
    found = cache.get(key)
    if found is None:
        found = _build_chart(today)
        cache.set(key, found, CHART_CACHE_SECONDS)
    return found


# --- the chart drawn: geometry for the template (an SVG per organisation, bars per week) ------------------------

BAR_AREA = (40, 8, 300, 56)  # x, y, width, height of the bars in each organisation's SVG (viewBox 0 0 360 92)


@dataclass(frozen=True)
class Bar:
    week: datetime.date
    accesses: int
    break_glass: int
    x: float
    y: float
    width: float
    height: float

    @property
    def middle(self) -> float:
        return self.x + self.width / 2


def bars(chart: Chart) -> list[tuple[Series, list[Bar]]]:
    """Each organisation's weekly bars on one scale (the largest week of any organisation fills the height), so
    the rows compare at a glance; a week with break glass carries its count, drawn as a marked label."""
    left, top, width, height = BAR_AREA
    slot = width / len(chart.weeks)
    scale = height / chart.largest if chart.largest else 0
    drawn = []
    for row in chart.series:
        row_bars = []
        for index, week in enumerate(chart.weeks):
            tall = row.accesses[index] * scale
            row_bars.append(
                Bar(
                    week,
                    row.accesses[index],
                    row.break_glass[index],
                    round(left + index * slot + slot * 0.15, 1),
                    round(top + height - tall, 1),
                    round(slot * 0.7, 1),
                    round(tall, 1),
                )
            )
        drawn.append((row, row_bars))
    return drawn


def install(site) -> None:
    """The admin index becomes the dashboard (above admin's own list of apps, which stays)."""
    plain_index = site.index

    def index(request, extra_context=None):
        context = {
            "dashboard_tiles": tiles(request.user),
            "count_cap": COUNT_CAP,
            **(extra_context or {}),
        }
        if request.user.has_perm("audit.view_accessevent"):
            drawn = chart()
            context |= {"chart": drawn, "chart_rows": bars(drawn)}
        return plain_index(request, context)

    site.index = index
    site.index_template = "admin/dashboard.html"
