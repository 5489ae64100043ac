"""DiagnosticReport -> Result; Observation -> values (patients.Observation) under a Result.

Which Result an Observation's values go under:
- one listed in a DiagnosticReport's `result` belongs to that report's Result;
- one listed in another Observation's `hasMember` (a panel, e.g. a full blood count) goes with that panel;
- any other (a standalone lab value, vital sign or finding) gets a Result of its own, keyed by its own id.
Values remember their Observation (source_id "Observation/<id>"), so a report arriving after its observations
adopts them (the emptied standalone Results are removed), and an observation resent later stays with its report.
An observation with components (blood pressure) gives one value per component.
"""

from collections import Counter, defaultdict
from decimal import Decimal, InvalidOperation
from functools import cache

from django.db import connection
from django.db.models import Q

from patients.categories import Category
from patients.models import Observation, Result

from ..context import Unmappable
from ..outcome import error, information
from ..registry import builds, reads
from ..serialise import REPORT_STATUSES, concept, patient_reference
from ..upsert import CREATED, UNCHANGED, UPDATED, Upserted, any_of, clip, strongest, upsert, write_rows
from .common import (
    code_of,
    codes_in,
    entry_fields,
    first,
    is_sensitive,
    last_updated,
    period_start,
    text_of,
    texts_of,
    to_datetime,
)

FLAGS = {"H": "H", "HH": "H", "HU": "H", "L": "L", "LL": "L", "LU": "L", "A": "A", "AA": "A"}
UNCHANGED_RESULT = Upserted(UNCHANGED)
VALUE_LIMIT = Decimal(10) ** 10  # the column holds 14 digits, 4 after the point
VALUE_FIELDS = [
    "result_id",
    "patient_id",
    "name",
    "code_system",
    "code",
    "value",
    "value_text",
    "unit",
    "reference_low",
    "reference_high",
    "flag",
    "effective_at",
]


def map_report(resource, ctx) -> dict:
    name = text_of(resource.code)
    if not name:
        raise Unmappable(error("required", "A report needs a code or text to be shown.", "DiagnosticReport.code"))
    system, code = code_of(resource.code)
    forms = [
        form.data.decode("utf-8", errors="replace")
        for form in resource.presentedForm or []
        if form.data and (form.contentType or "").startswith("text/")
    ]
    return {
        **entry_fields(
            resource,
            ctx,
            patient=resource.subject,
            patient_expression="DiagnosticReport.subject",
            effective_at=first(
                to_datetime(resource.effectiveDateTime),
                period_start(resource.effectivePeriod),
                to_datetime(resource.issued),
            ),
            entered_in_error=resource.status == "entered-in-error",
        ),
        "name": name,
        "code_system": system,
        "code": code,
        "status": resource.status or "final",
        "conclusion": "\n".join(filter(None, [resource.conclusion, *texts_of(resource.conclusionCode), *forms])),
    }


def observation_effective(resource):
    return first(
        to_datetime(resource.effectiveDateTime),
        to_datetime(resource.effectiveInstant),
        period_start(resource.effectivePeriod),
        to_datetime(resource.issued),
    )


@cache
def _value_fields(model) -> tuple[str, ...]:
    return tuple(name for name in model.model_fields if name.startswith("value") and not name.endswith("__ext"))


def _has_value(holder) -> bool:
    return any(getattr(holder, name) is not None for name in _value_fields(type(holder)))


def _number(number) -> tuple[Decimal | None, str]:
    """A number the column can hold, or (None, its text) for one too large to store as a value."""
    if number is None:
        return None, ""
    try:
        value = Decimal(number)
    except InvalidOperation:
        return None, ""
    return (value, "") if abs(value) < VALUE_LIMIT else (None, str(value))


def _quantity(quantity) -> tuple[Decimal | None, str]:
    return _number(quantity.value if quantity is not None else None)


def value_row(code_concept, holder) -> dict:
    """One value: what was measured, the result, its unit, reference range and abnormal flag."""
    system, code = code_of(code_concept)
    value, value_text, unit = None, "", ""
    if getattr(holder, "valueQuantity", None) is not None:
        value, value_text = _quantity(holder.valueQuantity)
        unit = holder.valueQuantity.unit or holder.valueQuantity.code or ""
    elif getattr(holder, "valueInteger", None) is not None:
        value, value_text = _number(holder.valueInteger)
    elif getattr(holder, "valueCodeableConcept", None) is not None:
        value_text = text_of(holder.valueCodeableConcept)
    elif getattr(holder, "valueString", None) is not None:
        value_text = holder.valueString
    elif getattr(holder, "valueBoolean", None) is not None:
        value_text = "Yes" if holder.valueBoolean else "No"
    elif getattr(holder, "dataAbsentReason", None) is not None:
        value_text = text_of(holder.dataAbsentReason)
    ranges = holder.referenceRange or []
    low = _quantity(ranges[0].low)[0] if ranges else None
    high = _quantity(ranges[0].high)[0] if ranges else None
    flags = [FLAGS[c] for concept in holder.interpretation or [] for c in codes_in(concept) if c in FLAGS]
    return {
        "name": text_of(code_concept) or "Observation",
        "code_system": system,
        "code": code,
        "value": value,
        "value_text": value_text,
        "unit": unit,
        "reference_low": low,
        "reference_high": high,
        "flag": flags[0] if flags else "",
    }


def value_rows(resource) -> list[dict]:
    """The observation's own value (or, for a finding with no value and no parts, the finding itself), then
    one per component. A panel with members and no value of its own gives none: its members carry the values."""
    rows = []
    if _has_value(resource) or resource.dataAbsentReason or not (resource.component or resource.hasMember):
        rows.append(value_row(resource.code, resource))
    rows.extend(value_row(component.code, component) for component in resource.component or [])
    return rows


class _Owners:
    """Which report or panel each observation in this submission belongs to."""

    def __init__(self, ctx, reports: dict, observations: dict):
        self.parent = {}
        for key, (outcome, _) in reports.items():
            for reference in outcome.entry.resource.result or []:
                self.parent.setdefault(ctx.key(reference), key)
        for key, outcome in observations.items():
            for reference in outcome.entry.resource.hasMember or []:
                self.parent.setdefault(ctx.key(reference), key)
        self.children = defaultdict(set)
        for child, parent in self.parent.items():
            self.children[parent].add(child)

    def top(self, key: str) -> str:
        seen = {key}
        while key in self.parent and self.parent[key] not in seen:
            key = self.parent[key]
            seen.add(key)
        return key


def _values_of(keys, organisation, *fields):
    """The stored values of these observations sent by this organisation. Looked up by source_id alone (its
    index is selective) and narrowed to the organisation here, which keeps the query plan simple at any size."""
    rows = (
        Observation.objects.filter(any_of("source_id", keys))
        .order_by()
        .values("result__source_organisation_id", "source_id", *fields)
    )
    return [row for row in rows if row.pop("result__source_organisation_id") == organisation.pk]


def _placed(observations: dict, ctx) -> dict[str, str]:
    """Where observations sent before now sit (observation key -> its Result's key). A panel has no values of
    its own: it sits where its members sit, unless they sit under the panel's own Result."""
    members = {
        key: {ctx.key(reference) for reference in outcome.entry.resource.hasMember or []}
        for key, outcome in observations.items()
    }
    wanted = set(observations).union(*members.values())
    placed = {
        row["source_id"]: row["result__source_id"] for row in _values_of(wanted, ctx.organisation, "result__source_id")
    }
    for key, keys in members.items():
        homes = {placed[member] for member in keys if member in placed} - keys - {key}
        if key not in placed and len(homes) == 1:
            placed[key] = homes.pop()
    return placed


def save_results(report_outcomes, observation_outcomes, ctx) -> None:
    organisation = ctx.organisation
    reports = {}
    for outcome in report_outcomes:
        try:
            reports[outcome.key] = (outcome, map_report(outcome.entry.resource, ctx))
        except Unmappable as exc:
            outcome.reject(exc.issue)
    observations = {outcome.key: outcome for outcome in observation_outcomes}
    owners = _Owners(ctx, reports, observations)
    placed = _placed(observations, ctx)

    # Decide each observation's Result, and map it (standalone ones make their Result's fields too).
    result_rows = {key: fields for key, (_, fields) in reports.items()}
    planned = {}  # observation key -> (result key, values, patient id, effective)
    for key, outcome in observations.items():
        resource = outcome.entry.resource
        top = owners.top(key)
        result_key = top if top != key else placed.get(key, key)
        owner_fields = result_rows.get(top) if top in reports else None
        try:
            if resource.subject is None and owner_fields is not None:
                patient_id = owner_fields["patient_id"]
            else:
                patient_id = ctx.patient_id(resource.subject, "Observation.subject")
        except Unmappable as exc:
            outcome.reject(exc.issue)
            continue
        withdrawn = resource.status == "entered-in-error"
        if result_key == key:
            system, code = code_of(resource.code)
            result_rows[key] = {
                "patient_id": patient_id,
                "source_organisation_id": organisation.pk,
                "effective_at": observation_effective(resource),
                "source_updated_at": last_updated(resource),
                "sensitive": is_sensitive(resource),
                "entered_in_error": withdrawn,
                "name": text_of(resource.code) or "Observation",
                "code_system": system,
                "code": code,
                "status": resource.status,
                "conclusion": "\n".join(note.text for note in resource.note or [] if note.text),
            }
        elif withdrawn:
            # Its report stays visible, so a withdrawn value inside it is dropped rather than shown.
            outcome.issues.append(information("Entered in error: its values are removed from the report."))
        rows = [] if withdrawn and result_key != key else value_rows(resource)
        planned[key] = (result_key, rows, patient_id, observation_effective(resource))

    statuses = upsert(Result, result_rows, organisation_id=organisation.pk, now=ctx.now)
    for key, (outcome, _) in reports.items():
        outcome.finish(statuses[key].status, stale=statuses[key].stale)

    # Results: those just upserted, and (for observations adopted before) those already held.
    results = {key: (s.pk, s.effective_at) for key, s in statuses.items() if s.pk is not None}
    elsewhere = {result_key for result_key, *_ in planned.values()} - set(results)
    if elsewhere:
        found = Result.objects.filter(any_of("source_id", elsewhere), source_organisation=organisation)
        results.update(
            (key, (pk, effective)) for key, pk, effective in found.values_list("source_id", "pk", "effective_at")
        )
    _adopt(owners, reports, observations, results, organisation)
    locked = {s.pk for s in statuses.values() if s.written}
    _replace_values(planned, observations, statuses, results, organisation, locked)


def _adopt(owners, reports, observations, results, organisation) -> None:
    """Move observations sent before into the report (or panel) in this submission that lists them."""
    for owner, members in owners.children.items():
        top = owners.top(owner)
        earlier = members - set(observations)
        if top not in results or not earlier or (owner not in reports and owner not in observations):
            continue
        pk = results[top][0]
        moved = (
            Observation.objects.filter(result__source_organisation=organisation)
            .filter(Q(source_id__in=earlier) | Q(result__source_id__in=earlier))
            .exclude(result_id=pk)
            .update(result_id=pk)
        )
        Result.objects.filter(
            source_organisation=organisation, source_id__in=earlier, observations__isnull=True
        ).delete()
        if moved and owner in reports:
            reports[owner][0].finish(UPDATED)


def _replace_values(planned, observations, statuses, results, organisation, locked) -> None:
    """Compare each observation's values with those held; replace only those that changed."""
    touched = {results[result_key][0] for result_key, *_ in planned.values() if result_key in results} - locked
    if connection.features.has_select_for_update and touched:
        # Two imports of the same observation at once: the second waits here (or at the upsert, which locks
        # the Results it wrote), then reads the first's values.
        list(Result.objects.select_for_update().filter(any_of("pk", touched)).order_by("pk").values_list("pk"))
    held, held_effective, held_ids = {}, {}, defaultdict(list)
    for row in _values_of(planned, organisation, "id", *VALUE_FIELDS):
        key = row["source_id"]
        held.setdefault(key, Counter())[tuple(row[f] for f in VALUE_FIELDS)] += 1
        held_effective.setdefault(key, []).append(row["effective_at"])
        held_ids[key].append(row["id"])
    to_delete, to_insert = [], []
    for key, (result_key, rows, patient_id, effective) in planned.items():
        outcome = observations[key]
        if result_key not in results:
            outcome.reject(error("not-found", f"The report {result_key} for this observation was not stored."))
            continue
        if key in statuses and statuses[key].stale:
            outcome.finish(UNCHANGED, stale=True)
            continue
        result_pk, result_effective = results[result_key]
        # No date of its own: keep the one its values have, else take its report's.
        effective = effective or next(iter(held_effective.get(key, [])), None) or result_effective
        new = [
            {
                **clip(Observation, dict(row)),
                "result_id": result_pk,
                "patient_id": patient_id,
                "effective_at": effective,
                "source_id": key,
            }
            for row in rows
        ]
        wanted = Counter(tuple(value[f] for f in VALUE_FIELDS) for value in new)
        values_status = UNCHANGED if wanted == held.get(key, Counter()) else UPDATED if key in held else CREATED
        if values_status != UNCHANGED:
            to_delete.extend(held_ids[key])
            to_insert.extend(new)
        # A panel inside a report stores nothing of its own: it shares its report's fate.
        status = statuses[key].status if key in statuses else statuses.get(result_key, UNCHANGED_RESULT).status
        outcome.finish(strongest(status, values_status) if rows or key in held else status)
    if to_delete:
        Observation.objects.filter(any_of("pk", to_delete)).delete()
    write_rows(Observation, to_insert)
    # Observations that once stood alone and now belong to a report leave an empty Result behind.
    adopted = [key for key, (result_key, *_) in planned.items() if result_key != key and key in held]
    if adopted:
        Result.objects.filter(
            source_organisation=organisation, source_id__in=adopted, observations__isnull=True
        ).delete()


# --- out: the read API ------------------------------------------------------------------------------------

reads("DiagnosticReport", Category.RESULTS, rank=90)
reads("Observation", Category.RESULTS, rank=100)  # values, served from the report rows (read.MODELS)


@builds(Result)
def result(entry: Result) -> dict:
    return {
        "resourceType": "DiagnosticReport",
        "status": entry.status if entry.status in REPORT_STATUSES else "unknown",
        "code": concept(entry, entry.name),
        "subject": patient_reference(entry.patient_id),
        "effectiveDateTime": entry.effective_at,
        "conclusion": entry.conclusion or None,
        "result": [{"reference": f"Observation/{o.pk}", "display": o.name} for o in entry.observations.all()] or None,
    }
