"""What the read API returns: the record pages' own queries (sharing.record), narrowed by the same access
decision, paginated. What a page would not show (other organisations' sensitive entries, categories they do
not share, entries withdrawn as entered in error), the API does not return either.
"""

import re
from dataclasses import dataclass

from django.db.models import QuerySet

from patients.categories import Category
from patients.models import ENTRY_MODELS, Observation, Patient, SupportPerson
from sharing import record as sections
from sharing.access import Decision
from sharing.models import Involvement

# Importing the mapping package registers every category's readable types (`registry.reads`).
from . import mapping  # noqa: F401
from .registry import searchable

# FHIR type -> record category, in the order $everything lists them: the teams, then what the mapping
# modules registered.
SEARCHABLE = {"CareTeam": Category.TEAMS, "RelatedPerson": Category.TEAMS, **searchable()}
MODELS = {"Observation": Observation, "RelatedPerson": SupportPerson, "CareTeam": Involvement}
DEFAULT_COUNT = 50
MAX_COUNT = 200


def resources_of(resource_type: str, patient: Patient, decision: Decision) -> QuerySet:
    """One type's visible items for a patient, newest first, with what their resources need preloaded."""
    if resource_type == "Observation":
        return (
            sections.observations(patient, decision)
            .select_related("result__source_organisation")
            .order_by("-effective_at", "-id")
        )
    if resource_type == "RelatedPerson":
        return sections.support_network(patient, decision).order_by("name", "pk")
    return sections.entries(patient, decision, SEARCHABLE[resource_type])


# Our ids are bigint primary keys: at most 19 ASCII digits (str.isdigit() alone accepts "²" and "٣").
_OUR_ID = re.compile(r"[0-9]{1,18}")


def find_entry(resource_type: str, pk: str):
    """The item behind "<type>/<id>" (any patient's: the caller decides access on its patient), or None."""
    if resource_type not in SEARCHABLE or not _OUR_ID.fullmatch(pk):
        return None
    model = MODELS.get(resource_type) or ENTRY_MODELS[SEARCHABLE[resource_type]]
    return model.objects.filter(pk=pk).only("pk", "patient_id").first()


@dataclass
class Page:
    items: list
    total: int
    offset: int
    count: int

    @property
    def has_next(self) -> bool:
        return self.offset + self.count < self.total

    @property
    def has_previous(self) -> bool:
        return self.offset > 0


def page_of(querysets: list[QuerySet], *, offset: int, count: int) -> Page:
    """One page across several lists in turn (for $everything): a count and at most one fetch per list."""
    totals = [queryset.count() for queryset in querysets]
    items, skip, wanted = [], offset, count
    for queryset, total in zip(querysets, totals, strict=True):
        if wanted <= 0:
            break
        if skip >= total:
            skip -= total
            continue
        taken = list(queryset[skip : skip + wanted])
        items.extend(taken)
        wanted -= len(taken)
        skip = 0
    return Page(items=items, total=sum(totals), offset=offset, count=count)


def paging(params) -> tuple[int, int]:
    """(_offset, _count) from the query string, clamped: every list that could grow is paginated."""

    def number(name, default):
        try:
            return int(params.get(name, default))
        except (TypeError, ValueError):
            return default

    return max(number("_offset", 0), 0), min(max(number("_count", DEFAULT_COUNT), 1), MAX_COUNT)
