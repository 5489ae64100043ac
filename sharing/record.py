"""The queries behind the record pages and the FHIR read API: each section, narrowed by the access decision.

Each function runs a fixed number of queries whatever the size of the record (select_related for the
source organisation, prefetch for observations and team members), so the summary page's query count
does not grow with the patient's history.

The summary is the clinical summary (docs/adr/0006-clinical-summary.md): what a clinician must not miss is
never cut short — every active alert, current allergy, current medication (and those stopped in the last few
months) and active problem — and every other section shows its newest few with how many there are in all.
"""

import calendar
import datetime
from collections.abc import Callable
from dataclasses import dataclass, field

from django.conf import settings
from django.db.models import Case, CharField, Count, F, Max, Prefetch, Q, QuerySet, Value, When
from django.utils import timezone

from directory.models import CareTeamMembership, Organisation
from patients.categories import REGISTRY, Category, entry_model, entry_models
from patients.models import (
    Allergy,
    Appointment,
    Condition,
    Medication,
    Observation,
    Patient,
    Result,
    SupportPerson,
)

from .access import Decision, sharing_organisations, visible, visible_teams
from .attachments import with_first_attachment

NEWEST_FIRST = (F("effective_at").desc(nulls_last=True), "-id")  # undated after dated, on every database


@dataclass
class Group:
    """Part of a summary section with a heading of its own (current medications, recently stopped)."""

    title: str
    items: list


@dataclass
class Section:
    category: Category
    items: list = field(default_factory=list)
    # On the summary: how many entries of the category the viewer may see in all, and, for a section that is
    # never cut short, what it shows all of ("current medications") and its groups.
    total: int | None = None
    all_of: str = ""
    groups: list[Group] = field(default_factory=list)

    @property
    def title(self):
        return self.category.label

    @property
    def template(self):
        """What the pages include to list the items (with `entries` and `category`); involved teams have their own."""
        if self.category == Category.TEAMS:
            return "patients/entries/teams.html"
        return REGISTRY[self.category].template

    @property
    def url_name(self):
        return f"record-{self.category.value}"

    @property
    def safety(self):
        """Drawn as a safety section (alerts, allergies) when it has anything."""
        return self.category in (Category.ALERTS, Category.ALLERGIES)

    @property
    def shown(self):
        return len(self.items)

    @property
    def more(self):
        """How many of the category's visible entries the summary does not show (they are on its page)."""
        return max((self.total or 0) - self.shown, 0)


def visible_entries(patient: Patient, decision: Decision) -> dict[Category, QuerySet]:
    """Each category's visible entries, unordered: built once for a page that both counts and lists them (the
    visibility rule costs more to build than the query does to run for most patients)."""
    return {
        category: visible(model.objects.filter(patient=patient), decision) for category, model in entry_models().items()
    }


def entries(patient: Patient, decision: Decision, category: Category, *, base: QuerySet | None = None) -> QuerySet:
    """All visible entries of one category, newest first (undated ones last); `base`: visible_entries()'s."""
    if category == Category.TEAMS:
        return involvements(patient, decision)
    model = entry_model(category)
    if base is None:
        base = visible(model.objects.filter(patient=patient), decision)
    queryset = base.select_related("source_organisation")
    if category == Category.RESULTS:
        queryset = queryset.prefetch_related(
            Prefetch("observations", queryset=Observation.objects.order_by("name", "id"))
        )
    if category == Category.LETTERS:  # the letter page's link to its attachment: in the same query
        queryset = with_first_attachment(queryset)
    return queryset.order_by(*NEWEST_FIRST)


def reports(patient: Patient, decision: Decision) -> QuerySet:
    """The results page's list: reports only (standalone observations are listed as observations)."""
    return entries(patient, decision, Category.RESULTS).filter(kind=Result.Kind.REPORT)


def standalone_observations(patient: Patient, decision: Decision) -> QuerySet:
    """Observations sent on their own (vital signs, social history), each held as a Result of kind
    "observation": shown as the readings they are, never as reports."""
    return entries(patient, decision, Category.RESULTS).filter(kind=Result.Kind.OBSERVATION)


def involvements(patient: Patient, decision: Decision, *, brief: bool = False) -> QuerySet:
    """Current involvements first, each with its team, organisation and members.

    `brief` (the summary): current involvements only and no members. Who is looking after the patient now,
    and how to reach them, is what a clinician needs at a glance; the members and past teams are one link
    away, and would otherwise push everything else down (and cost the summary two queries' worth of rows)."""
    involvements = visible_teams(patient.involvements.all(), decision).select_related("care_team__organisation")
    if brief:
        involvements = involvements.current()
    else:
        members = CareTeamMembership.objects.select_related("professional__user").order_by(
            "professional__user__last_name"
        )
        involvements = involvements.prefetch_related(Prefetch("care_team__memberships", queryset=members))
    return involvements.order_by(F("ended_at").asc(nulls_first=True), "-started_at")


def support_network(patient: Patient, decision: Decision) -> QuerySet:
    """The visible carers and contacts; none at all for a restricted patient (the S-flag hides contacts from
    every viewer and every output: the pages say "Restricted")."""
    if patient.restricted:
        return SupportPerson.objects.none()
    return visible(SupportPerson.objects.filter(patient=patient), decision).select_related("source_organisation")


def months_before(day: datetime.date, months: int) -> datetime.date:
    """The same day `months` calendar months earlier (or that month's last day: 31 May -> 28 or 29 Feb)."""
    year, month = divmod(day.year * 12 + day.month - 1 - months, 12)
    month += 1
    return day.replace(year=year, month=month, day=min(day.day, calendar.monthrange(year, month)[1]))


def recently_stopped_since(today: datetime.date) -> datetime.date:
    return months_before(today, settings.RECORD_STOPPED_MEDICATION_MONTHS)


@dataclass(frozen=True)
class Whole:
    """A summary section shown whole, never cut short: every visible entry of its category that `current`
    selects (given today's date), in `order`, optionally in groups."""

    all_of: str  # what the page says it shows all of
    current: Callable[[datetime.date], Q]
    order: tuple = NEWEST_FIRST
    groups: Callable[[list], list[Group]] | None = None


_ACTIVE_MEDICATION = Q(status=Medication.Status.ACTIVE)


# A dispensing or an administration is an event about a medicine, never by itself a current one (H-07: it must
# not read as something the patient is taking): the medications page lists it, with what it was.
MEDICATION_EVENTS = Q(event__in=[Medication.Event.DISPENSED, Medication.Event.ADMINISTERED])


def _current_medications(today):
    recently_stopped = Q(
        status__in=[Medication.Status.STOPPED, Medication.Status.COMPLETED], ended_on__gte=recently_stopped_since(today)
    )
    return (_ACTIVE_MEDICATION | recently_stopped) & ~MEDICATION_EVENTS


def _medication_groups(items) -> list[Group]:
    months = settings.RECORD_STOPPED_MEDICATION_MONTHS
    return [
        Group("Current", [m for m in items if m.status == Medication.Status.ACTIVE]),
        Group(
            f"Stopped or completed in the last {months} months",
            [m for m in items if m.status != Medication.Status.ACTIVE],
        ),
    ]


# Current medications first, repeat then acute then hospital, each newest first; then those stopped or
# completed, the most recently ended first.
MEDICATION_ORDER = (
    Case(When(_ACTIVE_MEDICATION, then=Value(0)), default=Value(1)),
    Case(
        *(When(_ACTIVE_MEDICATION & Q(kind=kind), then=Value(rank)) for rank, kind in enumerate(Medication.Kind)),
        default=Value(len(Medication.Kind)),
    ),
    Case(When(_ACTIVE_MEDICATION, then=Value(None)), default=F("ended_on")).desc(nulls_last=True),
    *NEWEST_FIRST,
)

# The four categories a clinician must not miss (hazard H-07), shown whole on the summary.
SHOWN_WHOLE: dict[Category, Whole] = {
    Category.ALERTS: Whole("active alerts", lambda today: Q(active=True)),
    # An allergy its source did not say is resolved or inactive is current (Allergy.is_current).
    Category.ALLERGIES: Whole(
        "current allergies",
        lambda today: ~Q(clinical_status__in=[Allergy.ClinicalStatus.INACTIVE, Allergy.ClinicalStatus.RESOLVED]),
    ),
    Category.MEDICATIONS: Whole("current medications", _current_medications, MEDICATION_ORDER, _medication_groups),
    Category.CONDITIONS: Whole("active conditions", lambda today: Q(clinical_status=Condition.Status.ACTIVE)),
}


def visible_counts(patient: Patient, decision: Decision, bases: dict | None = None) -> dict[Category, int]:
    """How many entries of each category the viewer may see: one UNION query (the summary's "5 of 23")."""
    bases = bases or visible_entries(patient, decision)
    parts = [
        base.order_by()
        .annotate(category=Value(category.value))
        .values("category")
        .annotate(n=Count("id"))
        .values_list("category", "n")
        for category, base in bases.items()
    ]
    first, *rest = parts
    return {Category(category): n for category, n in first.union(*rest, all=True)}


def summary(patient: Patient, decision: Decision, per_section: int, *, today: datetime.date | None = None):
    """Every category but involved teams (the page shows those after them), in the order of `Category`.

    Alerts, allergies, medications and conditions show all that is current (`SHOWN_WHOLE`), however many; every
    other category its newest `per_section`. Each section knows how many the viewer may see in all."""
    today = today or timezone.localdate()
    bases = visible_entries(patient, decision)
    totals = visible_counts(patient, decision, bases)
    sections = []
    for category in Category:
        if category == Category.TEAMS:
            continue
        queryset, whole = entries(patient, decision, category, base=bases[category]), SHOWN_WHOLE.get(category)
        section = Section(category=category, total=totals.get(category, 0))
        if whole:
            section.items = list(queryset.filter(whole.current(today)).order_by(*whole.order))
            section.all_of = whole.all_of
            section.groups = whole.groups(section.items) if whole.groups else []
        else:
            section.items = list(queryset[:per_section])
        sections.append(section)
    return sections


OPEN_ADMISSIONS_SHOWN = 3


def current_admissions(patient: Patient, decision: Decision) -> list[Appointment]:
    """The open hospital stays the viewer may see, newest first (at most a few: two at once already says one of
    them was never closed): an admission in progress that has not ended. One query, none for a patient who has
    died (an admission their source never closed must not say they are in hospital now)."""
    if patient.deceased or patient.date_of_death:
        return []
    admissions = entries(patient, decision, Category.APPOINTMENTS).filter(
        kind=Appointment.Kind.ADMISSION, status=Appointment.Status.IN_PROGRESS, ends_at__isnull=True
    )
    return list(admissions[:OPEN_ADMISSIONS_SHOWN])


def sources(*lists) -> list[Organisation]:
    """The organisations whose entries a page shows, by name, for their freshness (when carerecord last
    received anything from each). No query: each entry was fetched with its source organisation."""
    organisations = {}
    for items in lists:
        for entry in items:
            organisations.setdefault(entry.source_organisation_id, entry.source_organisation)
    return sorted(organisations.values(), key=lambda organisation: organisation.name)


def observations(patient: Patient, decision: Decision) -> QuerySet:
    """A patient's visible observations (their visibility follows their report's).

    `result__patient` repeats what the join implies, on purpose: without it PostgreSQL applies the
    visibility rule by scanning every report in the table (a quarter of a second at 100,000 patients);
    with it, it reads the patient's reports by index."""
    return visible(Observation.objects.filter(patient=patient, result__patient=patient), decision, via="result__")


def latest_by_test(patient: Patient, decision: Decision) -> list[Observation]:
    """For each test (by code; an uncoded test by its name), its most recent visible observation, with how many
    there are.

    Two queries whatever the history: the newest date and count per test (one GROUP BY over the
    (patient, code, date) index), then those rows by (code, date). A correlated "newest per code"
    subquery ran once per observation and took most of a second for a patient with thousands of results.
    A test whose observations are all undated (MAX ignores NULL) still shows: its last recorded one. Tests sent
    with no code are told apart by name, so that two of them are never shown as one.
    """
    visible_observations = observations(patient, decision)
    uncoded_name = Case(When(code="", then=F("name")), default=Value(""), output_field=CharField())
    newest = {
        (code, name): (last, n)
        for code, name, last, n in visible_observations.order_by()
        .annotate(uncoded_name=uncoded_name)
        .values("code", "uncoded_name")
        .annotate(last=Max("effective_at"), n=Count("id"))
        .values_list("code", "uncoded_name", "last", "n")
    }
    if not newest:
        return []
    matches = Q()
    for (code, name), (last, _) in newest.items():
        test = Q(code=code) if code else Q(code="", name=name)
        matches |= test & (Q(effective_at=last) if last is not None else Q(effective_at__isnull=True))
    latest = {}
    rows = visible_observations.filter(matches).select_related("result__source_organisation").order_by("-id")
    for observation in rows:
        key = (observation.code, "" if observation.code else observation.name)
        latest.setdefault(key, observation)  # two at the same moment: keep the last recorded
    for key, observation in latest.items():
        observation.count = newest[key][1]
    return sorted(latest.values(), key=lambda o: o.name)


def test_history(patient: Patient, decision: Decision, code: str, limit: int = 500) -> list[Observation]:
    """One test's visible observations, newest first (undated ones last), capped at the newest `limit`."""
    return list(
        observations(patient, decision)
        .filter(code=code)
        .select_related("result__source_organisation")
        .order_by(*NEWEST_FIRST)[:limit]
    )


@dataclass
class CoverageCell:
    category: Category
    state: str  # "own", "shared", "shared-empty", "not-shared"
    count: int = 0
    withheld: int = 0

    @property
    def label(self):
        return {
            "own": "Your organisation",
            "shared": "Shared",
            "shared-empty": "Shared, nothing recorded",
            "not-shared": "Not shared by this organisation",
        }[self.state]


@dataclass
class CoverageRow:
    organisation: object
    cells: list[CoverageCell]


def _holdings(patient: Patient):
    """(organisation id, category, items, sensitive items) for everything held on the patient: one UNION query."""
    parts = [
        model.objects.filter(patient=patient, entered_in_error=False)
        .order_by()
        .values("source_organisation_id")
        .annotate(category=Value(category.value), n=Count("id"), sensitive=Count("id", filter=Q(sensitive=True)))
        .values_list("source_organisation_id", "category", "n", "sensitive")
        for category, model in entry_models().items()
    ]
    parts.append(
        patient.involvements.order_by()
        .values("care_team__organisation_id")
        .annotate(category=Value(Category.TEAMS.value), n=Count("id"), sensitive=Value(0))
        .values_list("care_team__organisation_id", "category", "n", "sensitive")
    )
    first, *rest = parts
    return first.union(*rest, all=True)


def coverage(patient: Patient, decision: Decision) -> list[CoverageRow]:
    """For each organisation holding data on the patient and each category: what the viewer can see, so
    that absence never looks like "nothing exists". Three queries whatever the record's size.

    When the patient has opted out, the viewer's own organisation only (the page's banner says the patient
    has opted out): naming the others would tell the viewer which services hold data on the patient (a
    sexual-health clinic, say), the very relationships the objection keeps from other organisations."""
    held = {}
    for organisation_id, category, n, sensitive in _holdings(patient):
        if decision.opted_out and organisation_id != decision.organisation_id:
            continue
        count, withheld = held.get((organisation_id, category), (0, 0))
        held[organisation_id, category] = (count + n, withheld + sensitive)
    if decision.opted_out:
        organisation_ids = {decision.organisation_id} - {None}  # shown even when it holds nothing
        shared = set()
    else:
        organisation_ids = {organisation_id for organisation_id, _ in held}
        shared = {
            (organisation_id, category)
            for category, sharing in decision.shared().items()
            for organisation_id in sharing & organisation_ids
        }
    rows = []
    for organisation in Organisation.objects.filter(pk__in=organisation_ids).order_by("name"):
        cells = []
        for category in Category:
            count, sensitive = held.get((organisation.pk, category.value), (0, 0))
            if organisation.pk == decision.organisation_id:
                cells.append(CoverageCell(category, "own", count))
            elif (organisation.pk, category.value) not in shared:
                cells.append(CoverageCell(category, "not-shared"))
            else:
                visible_count = count - sensitive
                state = "shared" if visible_count else "shared-empty"
                cells.append(CoverageCell(category, state, visible_count, withheld=sensitive))
        rows.append(CoverageRow(organisation, cells))
    return rows


def withheld_count(patient: Patient, decision: Decision, category: Category) -> int:
    """How many sensitive entries of this category other organisations hold that the viewer cannot see."""
    if category == Category.TEAMS or decision.opted_out:
        return 0
    model = entry_model(category)
    return (
        model.objects.filter(patient=patient, sensitive=True, entered_in_error=False)
        .exclude(source_organisation_id=decision.organisation_id)
        .filter(source_organisation_id__in=sharing_organisations(category, decision))
        .count()
    )
