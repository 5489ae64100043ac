"""What changed since a professional last looked at a patient's record, and the records they opened recently.

A look is a visit: the record pages (AccessEvents allowed, page "record:…", by user id) a professional opens with
no more than SESSION_IDLE_MINUTES between one and the next. "Since you last looked" is since the last page of
their previous visit. Taking the page just before this one instead would clear every mark as soon as they opened
the medications and came back, and the "What changed" link would always find nothing. Searches and "my
patients" are not looks (they show demographics only), nor is the FHIR API; another professional's looks never
count.

Since then, an entry the viewer may see (`visible()`) is
- **new** when carerecord received it after that look (`created_at`, "received"), or
- **updated** when its source sent a newer version of it after that look: a kept FHIR version (fhirapi's
  ReceivedResource, keyed like the entry by organisation and "Type/id") numbered 2 or more and received since;
  for a report, also a newer version of one of its observations. HL7 v2 feeds are imported as FHIR and kept the
  same way; an entry written otherwise (the demo's seed) has no kept versions and is never marked updated:
  nothing is guessed from the source's own timestamps (`source_updated_at` is the sender's clock, not when it
  arrived).
Entries withdrawn as entered in error are shown to no one, so they are not listed either.
"""

import datetime
import itertools
from dataclasses import dataclass, field

from django.conf import settings
from django.db.models import Exists, Max, OuterRef, Q, QuerySet, Value
from django.utils import timezone

from audit.models import AccessBasis, AccessEvent, AccessOutcome
from patients.categories import TITLE_FIELDS, Category, entry_model, entry_models
from patients.models import Observation, Patient

from .access import Decision, can_search, patients_in_care_of, visible
from .models import BreakGlass

RECORD_PAGES = "record:"  # the pages that open a record through the access decision (AccessEvent.page)
NEW, UPDATED = "new", "updated"


@dataclass(frozen=True)
class Mark:
    """Why an entry is marked: new, or a newer version arrived; and when that was (carerecord's clock)."""

    kind: str
    at: datetime.datetime

    @property
    def label(self):
        return "New" if self.kind == NEW else "Updated"


@dataclass
class Changes:
    """What arrived since the viewer's last look. `since` is None on their first look: nothing is marked."""

    since: datetime.datetime | None
    marks: dict[tuple[Category, int], Mark] = field(default_factory=dict)

    @property
    def first_look(self):
        return self.since is None

    @property
    def count(self):
        return len(self.marks)

    def newest_first(self) -> list[tuple[Category, int, Mark]]:
        """(category, entry id, mark), the latest arrival first."""
        rows = [(category, pk, mark) for (category, pk), mark in self.marks.items()]
        return sorted(rows, key=lambda row: (row[2].at, row[1]), reverse=True)


def record_looks(user_id, patient_id) -> QuerySet:
    """The user's looks at this patient's record: allowed record pages, by user id (never another's)."""
    return AccessEvent.objects.filter(
        user_id=user_id, patient_id=patient_id, outcome=AccessOutcome.ALLOWED, page__startswith=RECORD_PAGES
    )


# Looks read back to find where the previous visit ended: a visit of more pages than this without a pause (none
# in practice) counts from the oldest of them, which marks a little more as new, never less.
LOOKS_READ = 500


def last_look(user, patient: Patient) -> datetime.datetime | None:
    """When the user's previous visit to this record ended (its last page), or None if this visit is their first.

    One query, on the newest LOOKS_READ of their looks at this patient: walking back from this page's own
    AccessEvent (written before this is called), the first look more than the idle time before the one after it
    ended the previous visit."""
    gap = datetime.timedelta(minutes=settings.SESSION_IDLE_MINUTES)
    looks = list(record_looks(user.pk, patient.pk).order_by("-at", "-id").values_list("at", flat=True)[:LOOKS_READ])
    return previous_visit_end(looks, gap)


def previous_visit_end(looks: list, gap: datetime.timedelta) -> datetime.datetime | None:
    """From the newest LOOKS_READ looks (newest first), the last look of the visit before the present one."""
    for later, earlier in itertools.pairwise(looks):
        if later - earlier > gap:
            return earlier
    return looks[-1] if len(looks) == LOOKS_READ else None


# Who knows of later versions of an entry: fhirapi keeps every version a source sent and registers its reader
# here at start-up (fhirapi.apps.FhirApiConfig.ready) — sharing sits below fhirapi in the layers contract
# (pyproject.toml) and does not import it. Each reader: (patient id, since) -> ((organisation id, "Type/id"),
# received at) for each version numbered 2 or more received after `since`.
REVISION_READERS: list = []


def register_revisions(reader) -> None:
    if reader not in REVISION_READERS:
        REVISION_READERS.append(reader)


def revised_since(patient: Patient, since: datetime.datetime) -> dict[tuple[int, str], datetime.datetime]:
    """(organisation id, "Type/id") of each of the patient's resources whose source sent a newer version (2, 3,
    ...) after `since`, with when the latest of them arrived (one query per registered reader)."""
    revised = {}
    for reader in REVISION_READERS:
        for key, received_at in reader(patient.pk, since):
            revised[key] = max(revised.get(key, received_at), received_at)
    return revised


def _reports_revised_by_observations(patient: Patient, revised: dict) -> dict[int, datetime.datetime]:
    """Reports (Result ids) one of whose observations had a newer version since: the report reads differently
    though its own resource did not change. One query, only when an Observation was revised."""
    keys = {(organisation_id, key) for organisation_id, key in revised if key.startswith("Observation/")}
    if not keys:
        return {}
    wanted = Q()
    for organisation_id, key in keys:
        wanted |= Q(result__source_organisation_id=organisation_id, source_id=key)
    reports = {}
    rows = Observation.objects.filter(wanted, patient=patient, result__patient=patient).values_list(
        "result_id", "result__source_organisation_id", "source_id"
    )
    for result_id, organisation_id, key in rows:
        at = revised[organisation_id, key]
        reports[result_id] = max(reports.get(result_id, at), at)
    return reports


def since_last_look(user, patient: Patient, decision: Decision) -> Changes:
    """What arrived since the user's last look that this decision lets them see: at most four queries (their
    last look, the revised versions, the observations behind them, and one UNION over every category)."""
    since = last_look(user, patient)
    if since is None or not decision.allowed:
        return Changes(since=since)
    revised = revised_since(patient, since)
    reports = _reports_revised_by_observations(patient, revised)
    by_organisation = {}
    for organisation_id, key in revised:
        by_organisation.setdefault(organisation_id, []).append(key)
    changed = Q(created_at__gt=since)
    for organisation_id, keys in by_organisation.items():
        changed |= Q(source_organisation_id=organisation_id, source_id__in=keys)
    parts = []
    for category, model in entry_models().items():
        condition = changed | Q(pk__in=list(reports)) if category == Category.RESULTS and reports else changed
        parts.append(
            visible(model.objects.filter(patient=patient), decision)
            .filter(condition)
            .order_by()
            .annotate(category=Value(category.value))
            .values_list("pk", "source_organisation_id", "source_id", "created_at", "category")
        )
    first, *rest = parts
    marks = {}
    for pk, organisation_id, key, created_at, category in first.union(*rest, all=True):
        category = Category(category)
        if created_at > since:
            marks[category, pk] = Mark(NEW, created_at)
            continue
        arrivals = [revised.get((organisation_id, key))]
        if category == Category.RESULTS:
            arrivals.append(reports.get(pk))
        marks[category, pk] = Mark(UPDATED, max(at for at in arrivals if at is not None))
    return Changes(since=since, marks=marks)


def mark(sections, changes: Changes) -> None:
    """Set `entry.change` (a Mark, or None) on the entries the summary shows: its templates tag them."""
    for section in sections:
        for entry in section.items:
            entry.change = changes.marks.get((section.category, entry.pk))


@dataclass(frozen=True)
class ChangedEntry:
    category: Category
    entry: object
    mark: Mark

    @property
    def title(self):
        return getattr(self.entry, TITLE_FIELDS[self.category])


def changed_entries(patient: Patient, decision: Decision, rows) -> list[ChangedEntry]:
    """The entries behind some of `Changes.newest_first()` (a page of it), in that order: one query per category
    on the page, each through `visible()` again, with its source organisation."""
    wanted = {}
    for category, pk, _ in rows:
        wanted.setdefault(category, []).append(pk)
    found = {}
    for category, pks in wanted.items():
        model = entry_model(category)
        for entry in visible(model.objects.filter(patient=patient, pk__in=pks), decision).select_related(
            "source_organisation"
        ):
            found[category, entry.pk] = entry
    return [ChangedEntry(category, found[category, pk], mark) for category, pk, mark in rows if (category, pk) in found]


# Recent patients.

RECENT_PATIENTS = 10
# Looked-at patients considered, newest first, to find the ten the professional may still open.
RECENT_CANDIDATES = 50


def recent_patients(user, limit: int = RECENT_PATIENTS) -> list[Patient]:
    """The patients whose records the user opened most recently (their allowed record pages, by user id), newest
    first, each with `last_opened` and `basis` (care-team or break-glass, for the listing's audit row).

    Only those whose record they could open now, by the access decision's rule (a current care-team grant in
    their acting organisation, or unexpired break glass): a relationship that has ended or break glass that has
    expired takes the patient off the list, so it can never be a way round access. Two queries whatever the
    history: the last look per patient, then those still open to them, with the basis."""
    if not can_search(user):
        return []
    looked = (
        AccessEvent.objects.filter(
            user_id=user.pk, outcome=AccessOutcome.ALLOWED, page__startswith=RECORD_PAGES, patient_id__isnull=False
        )
        .values("patient_id")
        .annotate(last=Max("at"))
        .order_by("-last")[:RECENT_CANDIDATES]
    )
    last_opened = {row["patient_id"]: row["last"] for row in looked}
    if not last_opened:
        return []
    now = timezone.now()
    in_care = patients_in_care_of(user).filter(pk=OuterRef("pk"))
    break_glass = BreakGlass.objects.filter(
        user=user, patient=OuterRef("pk"), started_at__lte=now, expires_at__gt=now
    )  # as access.active_break_glass
    patients = (
        Patient.objects.filter(pk__in=list(last_opened))
        .annotate(in_care=Exists(in_care), break_glass=Exists(break_glass))
        .filter(Q(in_care=True) | Q(break_glass=True))
        .select_related("registered_gp")
    )
    recent = []
    for patient in patients:
        patient.last_opened = last_opened[patient.pk]
        patient.basis = AccessBasis.CARE_TEAM if patient.in_care else AccessBasis.BREAK_GLASS
        recent.append(patient)
    recent.sort(key=lambda patient: patient.last_opened, reverse=True)
    return recent[:limit]
