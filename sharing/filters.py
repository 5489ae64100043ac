"""Filters for the record's lists (each category page, and the timeline): what narrows a list, never what widens it.

Every list starts from the access decision (`sharing.access.visible`, through `sharing.record.entries`); a filter
only adds conditions to it, so naming an organisation, a status or a date can never show something the viewer may
not see. The organisations a filter offers are those whose entries the viewer may see (`organisations`), so the
list of options tells nothing about an organisation whose entries are withheld.

Dates: an entry's date is the clinical date its source gave, else the date its source recorded it (H-09: never
when carerecord received it). A date range keeps the entries dated within it, by Europe/London days; an entry with
no date at all is in no range, so a date filter leaves it out (the pages say so), never placing it in one.

A status filter means what the summary means by it (H-07): a "current" allergy is one its source did not say is
inactive or resolved, a "current" medication is one being taken (a dispensing or an administration never is).
"""

import datetime
from dataclasses import dataclass
from functools import reduce
from operator import or_

from django.db.models import Q, QuerySet
from django.utils import timezone

from directory.models import Organisation
from patients.categories import Category, entry_model
from patients.models import (
    Allergy,
    Appointment,
    CarePlan,
    Condition,
    Immunisation,
    Medication,
    Patient,
    Procedure,
)

from .access import Decision, visible, visible_teams
from .record import MEDICATION_EVENTS

# The range a date filter accepts: wide enough for any record, narrow enough that a day's bounds always convert.
EARLIEST_YEAR, LATEST_YEAR = 1900, 2100
# A text search's words: each must be found (in the title or the text); more than this many are refused.
MAX_WORDS = 10


@dataclass(frozen=True)
class Status:
    """One status a category page can be filtered to: its query-string value, its label, and what it selects."""

    value: str
    label: str
    selects: Q


def _statuses(field: str, choices) -> tuple[Status, ...]:
    """One status per value of a coded status field, labelled as the model labels it."""
    return tuple(Status(value, label, Q(**{field: value})) for value, label in choices if value)


_ALLERGY_ENDED = [Allergy.ClinicalStatus.INACTIVE, Allergy.ClinicalStatus.RESOLVED]
_MEDICATION_ENDED = [Medication.Status.STOPPED, Medication.Status.COMPLETED]

# Only categories whose model has a status; in each, what the summary means by current comes first.
STATUSES: dict[Category, tuple[Status, ...]] = {
    Category.ALERTS: (
        Status("active", "Active", Q(active=True)),
        Status("ended", "No longer active", Q(active=False)),
    ),
    Category.ALLERGIES: (
        Status("current", "Current (including status not recorded)", ~Q(clinical_status__in=_ALLERGY_ENDED)),
        Status("inactive", "Inactive", Q(clinical_status=Allergy.ClinicalStatus.INACTIVE)),
        Status("resolved", "Resolved", Q(clinical_status=Allergy.ClinicalStatus.RESOLVED)),
    ),
    Category.MEDICATIONS: (
        Status("current", "Current", Q(status=Medication.Status.ACTIVE) & ~MEDICATION_EVENTS),
        Status("ended", "Stopped or completed", Q(status__in=_MEDICATION_ENDED) & ~MEDICATION_EVENTS),
        Status("events", "Dispensings and administrations", MEDICATION_EVENTS),
    ),
    Category.CONDITIONS: _statuses("clinical_status", Condition.Status.choices),
    Category.PROCEDURES: _statuses("status", Procedure.Status.choices),
    Category.IMMUNISATIONS: _statuses("status", Immunisation.Status.choices),
    Category.APPOINTMENTS: _statuses("status", Appointment.Status.choices),
    Category.CARE_PLANS: _statuses("status", CarePlan.Status.choices),
    # Involved teams: by their period, at the time of the request (`_narrow_involvements`; `selects` unused).
    Category.TEAMS: (Status("current", "Current", Q()), Status("ended", "Ended", Q())),
}

# The categories whose entries are read as text, and the fields searched (case-insensitive; every word must
# appear in one of them). Letters and care plans: what a clinician looks through for a word.
TEXT_SEARCHED: dict[Category, tuple[str, ...]] = {
    Category.LETTERS: ("title", "body"),
    Category.CARE_PLANS: ("title", "description"),
}


@dataclass(frozen=True)
class Filters:
    """What a list is narrowed to; every field empty: the whole list. `categories` is the timeline's (none: all)."""

    date_from: datetime.date | None = None
    date_to: datetime.date | None = None
    organisation_id: int | None = None
    status: str = ""
    text: str = ""
    categories: tuple[Category, ...] = ()

    @property
    def by_date(self) -> bool:
        return self.date_from is not None or self.date_to is not None

    @property
    def active(self) -> bool:
        return bool(self.by_date or self.organisation_id or self.status or self.text or self.categories)


def status_choices(category: Category) -> list[tuple[str, str]]:
    """The statuses a category page offers (none where its model has no status)."""
    return [(status.value, status.label) for status in STATUSES.get(category, ())]


def searches_text(category: Category) -> bool:
    return category in TEXT_SEARCHED


def day_start(day: datetime.date) -> datetime.datetime:
    """The first moment of a day in Europe/London (the pages' time zone), as an aware datetime."""
    return timezone.make_aware(datetime.datetime.combine(day, datetime.time.min), timezone.get_default_timezone())


def _within(field: str, filters: Filters) -> Q:
    bounds = Q()
    if filters.date_from is not None:
        bounds &= Q(**{f"{field}__gte": day_start(filters.date_from)})
    if filters.date_to is not None:
        bounds &= Q(**{f"{field}__lt": day_start(filters.date_to + datetime.timedelta(days=1))})
    return bounds


def dated_within(filters: Filters) -> Q:
    """Entries whose date (clinical, else recorded) falls in the range; an entry with neither is in no range."""
    return (Q(effective_at__isnull=False) & _within("effective_at", filters)) | (
        Q(effective_at__isnull=True, recorded_at__isnull=False) & _within("recorded_at", filters)
    )


def _words(text: str) -> list[str]:
    return text.split()[:MAX_WORDS]


def narrow(entries: QuerySet, category: Category, filters: Filters) -> QuerySet:
    """`entries` (already narrowed by the access decision) narrowed further by the filters: only ever fewer."""
    if category == Category.TEAMS:
        return _narrow_involvements(entries, filters)
    if filters.organisation_id is not None:
        entries = entries.filter(source_organisation_id=filters.organisation_id)
    if filters.by_date:
        entries = entries.filter(dated_within(filters))
    if filters.status:
        statuses = {status.value: status for status in STATUSES.get(category, ())}
        # An unknown status selects nothing (the form refuses it; here it must never mean "any").
        entries = entries.filter(statuses[filters.status].selects) if filters.status in statuses else entries.none()
    if filters.text:
        fields = TEXT_SEARCHED.get(category)
        if fields is None:
            return entries.none()
        for word in _words(filters.text):
            entries = entries.filter(reduce(or_, (Q(**{f"{field}__icontains": word}) for field in fields)))
    return entries


def _narrow_involvements(involvements: QuerySet, filters: Filters) -> QuerySet:
    """Involved teams: by the team's organisation, current or ended, and involved at any time in the date range."""
    now = timezone.now()
    if filters.organisation_id is not None:
        involvements = involvements.filter(care_team__organisation_id=filters.organisation_id)
    if filters.status == "current":
        involvements = involvements.current(now)
    elif filters.status == "ended":
        involvements = involvements.filter(ended_at__lte=now)
    elif filters.status:
        involvements = involvements.none()
    if filters.date_to is not None:
        involvements = involvements.filter(started_at__lt=day_start(filters.date_to + datetime.timedelta(days=1)))
    if filters.date_from is not None:
        start = day_start(filters.date_from)
        involvements = involvements.filter(Q(ended_at__isnull=True) | Q(ended_at__gte=start))
    if filters.text:
        involvements = involvements.none()
    return involvements


def _sources(patient: Patient, decision: Decision, category: Category) -> QuerySet:
    """The ids of the organisations whose entries of `category` the viewer may see (a subquery)."""
    if category == Category.TEAMS:
        return visible_teams(patient.involvements.all(), decision).values("care_team__organisation_id")
    return visible(entry_model(category).objects.filter(patient=patient), decision).values("source_organisation_id")


def organisations(patient: Patient, decision: Decision, categories) -> list[Organisation]:
    """The organisations a filter may offer: those with entries of these categories the viewer may see, by name.
    One query whatever the record's size (a subquery per category); none when the decision allows nothing."""
    if not decision.allowed or not categories:
        return []
    held = reduce(or_, (Q(pk__in=_sources(patient, decision, category)) for category in categories))
    return list(Organisation.objects.filter(held).order_by("name"))
