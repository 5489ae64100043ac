"""Privacy alerts for IG, as the Summary Care Record's privacy officers have: patterns in the access log worth a
look, computed on demand for one day (nothing stored; IG act through the access log and break-glass reviews).

Rules, each over one day (local time), record pages only (`record:*` and the FHIR read API `fhir:*`, the pages
that open a record through the access decision; searches and lists show demographics and are not counted):

- **Unusual volume** (`unusual-volume`): a professional opened the records of more distinct patients that day
  than max(VOLUME_FACTOR (3) × their median on the days they opened any in the previous BASELINE_DAYS (28),
  VOLUME_FLOOR (20)). No history: the floor alone.
- **Same family name** (`same-family-name`): a professional opened (or tried to open) the record of a patient
  whose family name is their own (case-insensitive): relatives, exes, neighbours. One alert per patient.
- **No care relationship** (`no-care-relationship`): look-ups with no care relationship outside break glass:
  refused for want of a relationship (reason `no-care-relationship`) without breaking the glass for that
  patient the same day, or allowed on no basis on a record page (which the access decision should never do).

Each alert links to the accesses behind it: admin's access log filtered to the professional, the day and,
where it is about one patient or one kind of access, to that. Settings (defaults above):
PRIVACY_ALERT_VOLUME_FACTOR, PRIVACY_ALERT_VOLUME_FLOOR, PRIVACY_ALERT_BASELINE_DAYS.

Bounded: every query is on one day of the access log by its `at` index, except the baseline, which reads only the
professionals above the floor that day, on the (user_id, at) index. A day of a city's log is a few hundred
thousand rows at most; the page never reads the table whole.
"""

import datetime
import enum
import statistics
from dataclasses import dataclass, field
from uuid import UUID

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Count, Exists, Max, Min, OuterRef, Q, Subquery
from django.db.models.functions import TruncDate, Upper
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode

from audit.models import AccessBasis, AccessEvent, AccessOutcome
from patients.models import Patient

from .access import Reason
from .models import BreakGlass

RECORD_PAGES = ("record:", "fhir:")


def _setting(name, default):
    return getattr(settings, f"PRIVACY_ALERT_{name}", default)


class Rule(enum.StrEnum):
    UNUSUAL_VOLUME = "unusual-volume"
    SAME_FAMILY_NAME = "same-family-name"
    NO_RELATIONSHIP = "no-care-relationship"

    @property
    def title(self) -> str:
        return {
            Rule.UNUSUAL_VOLUME: "Far more records than usual",
            Rule.SAME_FAMILY_NAME: "A patient with the professional's own family name",
            Rule.NO_RELATIONSHIP: "Look-ups with no care relationship, outside break glass",
        }[self]


@dataclass(frozen=True)
class Alert:
    rule: Rule
    user_id: int
    user_email: str
    professional_name: str
    organisation_code: str
    summary: str
    count: int  # patients (volume, no relationship) or accesses (family name)
    first_at: datetime.datetime
    last_at: datetime.datetime
    links: tuple[tuple[str, str], ...] = ()
    patient_id: UUID | None = None
    patient_nhs_number: str = ""
    detail: dict = field(default_factory=dict)


def day_window(day: datetime.date) -> tuple[datetime.datetime, datetime.datetime]:
    """Local midnight to the next local midnight, as aware datetimes."""
    start = timezone.make_aware(datetime.datetime.combine(day, datetime.time.min))
    end = timezone.make_aware(datetime.datetime.combine(day + datetime.timedelta(days=1), datetime.time.min))
    return start, end


def alerts_for(day: datetime.date | None = None) -> list[Alert]:
    """Every alert for one day (default today), rule by rule, the largest first within each."""
    day = day or timezone.localdate()
    return [*unusual_volume(day), *same_family_name(day), *no_care_relationship(day)]


def _record_pages() -> Q:
    pages = Q()
    for prefix in RECORD_PAGES:
        pages |= Q(page__startswith=prefix)
    return pages


def _opened(start, end):
    """Record pages opened (or refused) by signed-in users in [start, end)."""
    return AccessEvent.objects.filter(
        _record_pages(), at__gte=start, at__lt=end, user_id__isnull=False, patient_id__isnull=False
    ).order_by()


def accesses_url(*, email: str, start, end, **filters) -> str:
    """Admin's access log, filtered: this professional, this window, and any other changelist filters."""
    query = {"professional": email, "at__gte": start.isoformat(), "at__lt": end.isoformat(), **filters}
    return f"{reverse('admin:audit_accessevent_changelist')}?{urlencode(query)}"


_WHO = {"email": Max("user_email"), "name": Max("professional_name"), "code": Max("organisation_code")}


def unusual_volume(day: datetime.date) -> list[Alert]:
    factor = _setting("VOLUME_FACTOR", 3)
    floor = _setting("VOLUME_FLOOR", 20)
    baseline_days = _setting("BASELINE_DAYS", 28)
    start, end = day_window(day)
    today = (
        _opened(start, end)
        .values("user_id")
        .annotate(n=Count("patient_id", distinct=True), first=Min("at"), last=Max("at"), **_WHO)
        .filter(n__gt=floor)
    )
    candidates = {row["user_id"]: row for row in today}
    if not candidates:
        return []
    history_start, _ = day_window(day - datetime.timedelta(days=baseline_days))
    per_day = (
        _opened(history_start, start)
        .filter(user_id__in=list(candidates))
        .annotate(day=TruncDate("at"))
        .values("user_id", "day")
        .annotate(n=Count("patient_id", distinct=True))
    )
    history: dict[int, list[int]] = {}
    for row in per_day:
        history.setdefault(row["user_id"], []).append(row["n"])
    alerts = []
    for user_id, row in candidates.items():
        usual = statistics.median(history[user_id]) if user_id in history else 0
        threshold = max(factor * usual, floor)
        if row["n"] <= threshold:
            continue
        usual_text = (
            f"usually {usual:g} a day" if user_id in history else f"no record opened in the {baseline_days} days before"
        )
        alerts.append(
            Alert(
                rule=Rule.UNUSUAL_VOLUME,
                user_id=user_id,
                user_email=row["email"],
                professional_name=row["name"],
                organisation_code=row["code"],
                summary=f"Opened the records of {row['n']} patients ({usual_text}; alert above {threshold:g}).",
                count=row["n"],
                first_at=row["first"],
                last_at=row["last"],
                links=(("Their accesses that day", accesses_url(email=row["email"], start=start, end=end)),),
                detail={"usual": usual, "threshold": threshold, "days_of_history": len(history.get(user_id, []))},
            )
        )
    return sorted(alerts, key=lambda alert: -alert.count)


def same_family_name(day: datetime.date) -> list[Alert]:
    start, end = day_window(day)
    viewer_family = Subquery(get_user_model().objects.filter(pk=OuterRef("user_id")).values("last_name")[:1])
    namesake = (
        Patient.objects.filter(pk=OuterRef("patient_id"))
        .annotate(family=Upper("family_name"))
        .filter(family=Upper(OuterRef("viewer_family")))
    )
    rows = (
        _opened(start, end)
        .annotate(viewer_family=viewer_family)
        .exclude(viewer_family="")
        .filter(Exists(namesake))
        .values("user_id", "patient_id")
        .annotate(
            n=Count("id"),
            refused=Count("id", filter=Q(outcome=AccessOutcome.REFUSED)),
            first=Min("at"),
            last=Max("at"),
            nhs_number=Max("patient_nhs_number"),
            **_WHO,
        )
    )
    alerts = []
    for row in rows:
        refused = f", {row['refused']} refused" if row["refused"] else ""
        alerts.append(
            Alert(
                rule=Rule.SAME_FAMILY_NAME,
                user_id=row["user_id"],
                user_email=row["email"],
                professional_name=row["name"],
                organisation_code=row["code"],
                summary=f"Opened the record of a patient with their own family name {row['n']} times{refused}.",
                count=row["n"],
                first_at=row["first"],
                last_at=row["last"],
                patient_id=row["patient_id"],
                patient_nhs_number=row["nhs_number"],
                links=(
                    (
                        "Their accesses to this record that day",
                        accesses_url(email=row["email"], start=start, end=end, patient=row["patient_id"]),
                    ),
                ),
            )
        )
    return sorted(alerts, key=lambda alert: (-alert.count, alert.user_email))


def no_care_relationship(day: datetime.date) -> list[Alert]:
    start, end = day_window(day)
    refused = Q(outcome=AccessOutcome.REFUSED, reason=Reason.NO_RELATIONSHIP)
    no_basis = Q(outcome=AccessOutcome.ALLOWED, basis=AccessBasis.NONE, page__startswith="record:")
    pairs = list(
        _opened(start, end)
        .filter(refused | no_basis)
        .values("user_id", "patient_id")
        .annotate(
            n=Count("id"),
            allowed=Count("id", filter=Q(outcome=AccessOutcome.ALLOWED)),
            first=Min("at"),
            last=Max("at"),
            **_WHO,
        )
    )
    if not pairs:
        return []
    broke_glass = set(
        BreakGlass.objects.filter(
            user_id__in={row["user_id"] for row in pairs}, started_at__gte=start, started_at__lt=end
        ).values_list("user_id", "patient_id")
    )
    by_user: dict[int, list[dict]] = {}
    for row in pairs:
        if row["allowed"] or (row["user_id"], row["patient_id"]) not in broke_glass:
            by_user.setdefault(row["user_id"], []).append(row)
    alerts = []
    for user_id, rows in by_user.items():
        who = rows[0]
        looks = sum(row["n"] for row in rows)
        allowed = sum(row["allowed"] for row in rows)
        links = [
            (
                "Their refusals that day",
                accesses_url(
                    email=who["email"],
                    start=start,
                    end=end,
                    outcome__exact=AccessOutcome.REFUSED,
                    reason=Reason.NO_RELATIONSHIP,
                ),
            )
        ]
        if allowed:
            links.append(
                (
                    "Records shown on no basis",
                    accesses_url(
                        email=who["email"],
                        start=start,
                        end=end,
                        outcome__exact=AccessOutcome.ALLOWED,
                        basis__exact=AccessBasis.NONE,
                        page="record:",
                    ),
                )
            )
        shown = f"; {allowed} shown on no basis" if allowed else ""
        alerts.append(
            Alert(
                rule=Rule.NO_RELATIONSHIP,
                user_id=user_id,
                user_email=who["email"],
                professional_name=who["name"],
                organisation_code=who["code"],
                summary=(
                    f"Looked up {len(rows)} patient record{'s' if len(rows) != 1 else ''} with no care "
                    f"relationship and without breaking the glass ({looks} look-ups{shown})."
                ),
                count=len(rows),
                first_at=min(row["first"] for row in rows),
                last_at=max(row["last"] for row in rows),
                links=tuple(links),
                patient_id=rows[0]["patient_id"] if len(rows) == 1 else None,
            )
        )
    return sorted(alerts, key=lambda alert: (-alert.count, alert.user_email))
