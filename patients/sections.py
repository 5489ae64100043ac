"""The queries behind the record pages: what each section shows, already narrowed by the access decision.

Each function runs a fixed number of queries whatever the size of the record (select_related for the
source organisation, prefetch for observations and team members), so the summary page's query count
does not grow with the patient's history.
"""

from dataclasses import dataclass, field

from django.db.models import Count, OuterRef, Prefetch, QuerySet, Subquery

from sharing.access import Decision, visible, visible_teams
from sharing.models import CareTeamMembership

from .categories import Category
from .models import ENTRY_MODELS, Observation, Patient, SupportPerson


@dataclass
class Section:
    category: Category
    items: list = field(default_factory=list)

    @property
    def title(self):
        return self.category.label

    @property
    def template(self):
        return f"patients/entries/{self.category.value}.html"

    @property
    def url_name(self):
        return f"record-{self.category.value}"


def entries(patient: Patient, decision: Decision, category: Category) -> QuerySet:
    """All visible entries of one category, newest first."""
    if category == Category.TEAMS:
        return involvements(patient, decision)
    model = ENTRY_MODELS[category]
    queryset = visible(model.objects.filter(patient=patient), decision).select_related("source_organisation")
    if category == Category.RESULTS:
        queryset = queryset.prefetch_related(Prefetch("observations", queryset=Observation.objects.order_by("name")))
    return queryset.order_by("-effective_at", "-id")


def involvements(patient: Patient, decision: Decision) -> QuerySet:
    """Current involvements first, each with its team, organisation and members."""
    members = CareTeamMembership.objects.select_related("professional__user").order_by("professional__user__last_name")
    return (
        visible_teams(patient.involvements.all(), decision)
        .select_related("care_team__organisation")
        .prefetch_related(Prefetch("care_team__memberships", queryset=members))
        .order_by("ended_at", "-started_at")
    )


def support_network(patient: Patient, decision: Decision) -> QuerySet:
    return visible(SupportPerson.objects.filter(patient=patient), decision).select_related("source_organisation")


def summary(patient: Patient, decision: Decision, per_section: int) -> list[Section]:
    """The newest few items of every category (teams are shown separately, near the top)."""
    return [
        Section(category=category, items=list(entries(patient, decision, category)[:per_section]))
        for category in Category
        if category != Category.TEAMS
    ]


def latest_by_test(patient: Patient, decision: Decision) -> list[Observation]:
    """For each test (by code), its most recent visible observation, with how many there are.

    Two queries whatever the history: the newest per code via a correlated subquery, and the counts.
    """
    observations = visible(Observation.objects.filter(patient=patient), decision, via="result__")
    newest = observations.filter(code=OuterRef("code")).order_by("-effective_at", "-id").values("id")[:1]
    latest = list(
        observations.filter(id=Subquery(newest)).select_related("result__source_organisation").order_by("name")
    )
    counts = dict(observations.order_by().values("code").annotate(n=Count("id")).values_list("code", "n"))
    for observation in latest:
        observation.count = counts.get(observation.code, 1)
    return latest


def test_history(patient: Patient, decision: Decision, code: str, limit: int = 500) -> list[Observation]:
    """One test's visible observations, oldest first (for a trend), capped at the newest `limit`."""
    observations = (
        visible(Observation.objects.filter(patient=patient, code=code), decision, via="result__")
        .select_related("result__source_organisation")
        .order_by("-effective_at", "-id")[:limit]
    )
    return list(reversed(observations))
