"""The timeline: every category's entries for a patient in one list, newest first, filtered and a page at a time.

An entry is placed by the clinical date its source gave, else the date its source recorded it; entries with
neither come last, under "Date not recorded", and are never given a date (H-09). Every query starts from the
access decision (`sharing.access.visible`), and filters only narrow it (`sharing.filters`).

A page costs a fixed number of queries whatever the size of the record: one UNION of every category's keys
(category, id, date) to count, one for the page's keys, then one per category on that page for its entries (with
their source organisation): at most 2 + the number of categories. Involved teams are not entries with a date
from a source; they have their own page.
"""

from dataclasses import dataclass

from django.db.models import Case, IntegerField, Q, QuerySet, Value, When
from django.db.models.functions import Coalesce
from django.utils import timezone

from patients.categories import TITLE_FIELDS, Category, entry_models
from patients.models import Alert, Patient

from . import filters as record_filters
from .access import Decision, visible

UNDATED_TITLE = "Date not recorded"

# The coded fields that say more about it (their labels, as the models give them; blank values say nothing).
DETAILS: dict[Category, tuple[str, ...]] = {
    Category.ALERTS: ("kind",),
    Category.ALLERGIES: ("clinical_status",),
    Category.MEDICATIONS: ("status", "event"),
    Category.CONDITIONS: ("clinical_status",),
    Category.RESULTS: ("kind",),
    Category.PROCEDURES: ("status",),
    Category.IMMUNISATIONS: ("status",),
    Category.LETTERS: ("kind",),
    Category.APPOINTMENTS: ("kind", "status"),
    Category.CARE_PLANS: ("status",),
    Category.EVENTS: ("service",),
}


def categories() -> list[Category]:
    """The categories on the timeline, in the record's order: every one with entry models."""
    return list(entry_models())


@dataclass
class Row:
    category: Category
    entry: object  # the record entry, with its source organisation

    @property
    def what(self) -> str:
        return getattr(self.entry, TITLE_FIELDS[self.category])

    @property
    def details(self) -> list[str]:
        labels = [
            getattr(self.entry, f"get_{field}_display")()
            for field in DETAILS[self.category]
            if getattr(self.entry, field)
        ]
        if isinstance(self.entry, Alert) and not self.entry.active:
            labels.append("No longer active")
        return labels

    @property
    def placed_at(self):
        """Where the row sits: the clinical date, else the recorded one (None: neither was given)."""
        return self.entry.effective_at or self.entry.recorded_at


@dataclass
class Group:
    """The rows of one year (Europe/London), or those with no date at all (`undated`)."""

    title: str
    rows: list
    undated: bool = False


def _keys(patient: Patient, decision: Decision, category: Category, rank: int, filters) -> QuerySet:
    model = entry_models()[category]
    entries = visible(model.objects.filter(patient=patient), decision)
    entries = record_filters.narrow(entries, category, filters)
    return (
        entries.order_by()
        .annotate(
            rank=Value(rank, output_field=IntegerField()),
            placed_at=Coalesce("effective_at", "recorded_at"),
            undated=Case(
                When(Q(effective_at__isnull=True, recorded_at__isnull=True), then=Value(1)),
                default=Value(0),
                output_field=IntegerField(),
            ),
        )
        .values_list("undated", "placed_at", "rank", "id")
    )


def keys(patient: Patient, decision: Decision, filters: record_filters.Filters) -> QuerySet:
    """Every visible entry the filters keep, as (undated, placed_at, category rank, id), newest first and undated
    last: one UNION, which the paginator counts and slices (one query each)."""
    shown = categories()
    chosen = [category for category in shown if not filters.categories or category in filters.categories]
    if not decision.allowed or not chosen:
        return entry_models()[shown[0]].objects.none().values_list("id")
    parts = [_keys(patient, decision, category, shown.index(category), filters) for category in chosen]
    first, *rest = parts
    combined = first.union(*rest, all=True) if rest else first
    return combined.order_by("undated", "-placed_at", "rank", "-id")


def rows(page_keys, patient: Patient, decision: Decision) -> list[Row]:
    """The page's entries, in the page's order: one query per category on the page. `page_keys` must be a slice
    of `keys()` for this patient and decision, made in this request (the view's paginator): those ids already
    passed the access decision and visibility in that query, so they are fetched by id without building the
    visibility rule again (which cost a fifth of the page); the patient is still required. Never pass ids taken
    from a request."""
    shown = categories()
    ids_by_rank: dict[int, list[int]] = {}
    for _undated, _placed_at, rank, entry_id in page_keys:
        ids_by_rank.setdefault(rank, []).append(entry_id)
    fetched = {}
    for rank, ids in ids_by_rank.items():
        category = shown[rank]
        model = entry_models()[category]
        if not decision.allowed:
            continue
        entries = model.objects.filter(patient=patient, pk__in=ids)
        for entry in entries.select_related("source_organisation"):
            fetched[rank, entry.pk] = Row(category, entry)
    return [fetched[rank, entry_id] for _u, _p, rank, entry_id in page_keys if (rank, entry_id) in fetched]


def groups(page_rows: list[Row]) -> list[Group]:
    """The page's rows by year (in Europe/London), newest first, then those with no date under "Date not recorded"."""
    grouped: list[Group] = []
    for row in page_rows:
        placed_at = row.placed_at
        if placed_at is None:
            title, undated = UNDATED_TITLE, True
        else:
            title, undated = str(timezone.localtime(placed_at).year), False
        if not grouped or grouped[-1].title != title:
            grouped.append(Group(title, [], undated))
        grouped[-1].rows.append(row)
    return grouped


def organisations(patient: Patient, decision: Decision):
    """The organisations the timeline's filter offers: those with entries on it the viewer may see."""
    return record_filters.organisations(patient, decision, categories())
