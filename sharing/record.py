"""The queries behind the record pages and the FHIR read API: each section, narrowed by the access decision.

Each function runs a fixed number of queries whatever the size of the record (select_related for the
source organisation, prefetch for observations and team members), so the summary page's query count
does not grow with the patient's history.
"""

from dataclasses import dataclass, field

from django.db.models import Count, F, Max, Prefetch, Q, QuerySet, Value
from django.utils import timezone

from directory.models import CareTeamMembership, Organisation
from patients.categories import REGISTRY, Category, entry_model, entry_models
from patients.models import Observation, Patient, SupportPerson

from .access import Decision, sharing_organisations, visible, visible_teams
from .models import SharingAgreement


@dataclass
class Section:
    category: Category
    items: list = field(default_factory=list)

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


def entries(patient: Patient, decision: Decision, category: Category) -> QuerySet:
    """All visible entries of one category, newest first."""
    if category == Category.TEAMS:
        return involvements(patient, decision)
    model = entry_model(category)
    queryset = visible(model.objects.filter(patient=patient), decision).select_related("source_organisation")
    if category == Category.RESULTS:
        queryset = queryset.prefetch_related(Prefetch("observations", queryset=Observation.objects.order_by("name")))
    return queryset.order_by("-effective_at", "-id")


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
    return visible(SupportPerson.objects.filter(patient=patient), decision).select_related("source_organisation")


def summary(patient: Patient, decision: Decision, per_section: int) -> list[Section]:
    """The newest few items of every category (teams are shown separately, near the top)."""
    return [
        Section(category=category, items=list(entries(patient, decision, category)[:per_section]))
        for category in Category
        if category != Category.TEAMS
    ]


def observations(patient: Patient, decision: Decision) -> QuerySet:
    """A patient's visible observations (their visibility follows their report's).

    `result__patient` repeats what the join implies, on purpose: without it PostgreSQL applies the
    visibility rule by scanning every report in the table (a quarter of a second at 100,000 patients);
    with it, it reads the patient's reports by index."""
    return visible(Observation.objects.filter(patient=patient, result__patient=patient), decision, via="result__")


def latest_by_test(patient: Patient, decision: Decision) -> list[Observation]:
    """For each test (by code), its most recent visible observation, with how many there are.

    Two queries whatever the history: the newest date and count per code (one GROUP BY over the
    (patient, code, date) index), then those rows by (code, date). A correlated "newest per code"
    subquery ran once per observation and took most of a second for a patient with thousands of results.
    """
    visible_observations = observations(patient, decision)
    newest = {
        code: (last, n)
        for code, last, n in visible_observations.order_by()
        .values("code")
        .annotate(last=Max("effective_at"), n=Count("id"))
        .values_list("code", "last", "n")
    }
    if not newest:
        return []
    matches = Q()
    for code, (last, _) in newest.items():
        matches |= Q(code=code, effective_at=last)
    latest = {}
    rows = visible_observations.filter(matches).select_related("result__source_organisation").order_by("-id")
    for observation in rows:
        latest.setdefault(observation.code, observation)  # two at the same moment: keep the last recorded
    for code, observation in latest.items():
        observation.count = newest[code][1]
    return sorted(latest.values(), key=lambda o: o.name)


def test_history(patient: Patient, decision: Decision, code: str, limit: int = 500) -> list[Observation]:
    """One test's visible observations, oldest first (for a trend), capped at the newest `limit`."""
    history = (
        observations(patient, decision)
        .filter(code=code)
        .select_related("result__source_organisation")
        .order_by("-effective_at", "-id")[:limit]
    )
    return list(reversed(history))


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
        shared = set(
            SharingAgreement.objects.filter(
                organisation_id__in=organisation_ids, shares=True, since__lte=timezone.localdate()
            ).values_list("organisation_id", "category")
        )
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
        .filter(source_organisation_id__in=sharing_organisations(category))
        .count()
    )
