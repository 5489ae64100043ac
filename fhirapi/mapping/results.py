"""DiagnosticReport -> Result (kind "report"); Observation -> values (patients.Observation) under a Result.

Keep what the source said: every coding, the UCUM unit (system and code beside the unit as written), the
observation's category, its interpretation and reference ranges as text, and for a component (systolic,
diastolic) the reading it belongs to (rows of one Observation share its source_id, so a blood pressure stays
one reading). Nothing is made up: a standalone Observation is held as a Result of kind "observation" (same
sharing rules) and is given back as the Observation it was, never as a DiagnosticReport.

Where an Observation's values go: under its top-most known owner — the report that lists it (directly or
through a panel), else the panel (`hasMember`) that lists it, else a Result of its own keyed by its own id. A
panel in a report, or a member of a panel, has no Result of its own. The links (a report's `result`, a panel's
`hasMember`) are remembered (fhirapi.models.ResultLink), so a report, its panel and the panel's members sent in
any order, over any number of requests, reach the rows one bundle holding them all gives: values sent before
their owner are moved under it when it arrives (and the emptied standalone Result removed); values sent after
it go straight there. Re-sending anything changes nothing. A link a later version of a report drops is
forgotten, but values already held stay where they are until their own Observation is sent again.

Dates: a value's `effective_at` is its own Observation's effective[x] (else `issued`), or None when it gave
none — never its report's date and never the time of import. A record page shows a value without a date of its
own under its report's date, so nothing is lost, and nothing is dated that the source did not date.
"""

import json
from collections import Counter, defaultdict
from decimal import Decimal, InvalidOperation
from functools import cache

from django.db import connection
from django.db.models import Q

from patients.categories import Category
from patients.models import Observation, Result

from ..context import Unmappable
from ..models import ReceivedResource, ResultLink
from ..outcome import error, information, warning
from ..registry import builds, reads
from ..serialise import REPORT_STATUSES, concept, patient_reference
from ..upsert import CREATED, UNCHANGED, UPDATED, any_of, clip, held_rows, strongest, upsert, write_rows
from .common import (
    code_of,
    codes_in,
    codings_of,
    entry_fields,
    first,
    is_sensitive,
    labelled_sensitive,
    last_updated,
    period_start,
    text_of,
    texts_of,
    to_datetime,
)

FLAGS = {"H": "H", "HH": "H", "HU": "H", "L": "L", "LL": "L", "LU": "L", "A": "A", "AA": "A"}
VALUE_LIMIT = Decimal(10) ** 10  # the column holds 14 digits, 4 after the point
REPORT, PANEL = "DiagnosticReport/", "Observation/"
LINK_DEPTH = 6  # report > panel > panel > member is as deep as FHIR results go; a bound stops a cycle
VALUE_FIELDS = [
    "result_id",
    "patient_id",
    "name",
    "code_system",
    "code",
    "codings",
    "value",
    "value_text",
    "unit",
    "unit_system",
    "unit_code",
    "observation_category",
    "reading_name",
    "reading_code",
    "interpretation",
    "reference_text",
    "reference_low",
    "reference_high",
    "flag",
    "effective_at",
]


# --- in: resource -> fields (plain functions, no writes) --------------------------------------------------


def category_of(resource) -> str:
    """The first coding's code of the first category (vital-signs, laboratory, social-history...), else its text."""
    for category in resource.category or []:
        for coding in category.coding or []:
            if coding.code:
                return coding.code
        return category.text or ""
    return ""


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
        "recorded_at": to_datetime(resource.issued),
        "kind": Result.Kind.REPORT,
        "observation_category": "",
        "name": name,
        "code_system": system,
        "code": code,
        "codings": codings_of(resource.code),
        "status": resource.status or "final",
        "conclusion": "\n".join(filter(None, [resource.conclusion, *texts_of(resource.conclusionCode), *forms])),
    }


def observation_effective(resource):
    """The Observation's own clinical date, or None: never its report's, never the time it arrived."""
    return first(
        to_datetime(resource.effectiveDateTime),
        to_datetime(resource.effectiveInstant),
        period_start(resource.effectivePeriod),
        to_datetime(resource.issued),
    )


def standalone_fields(resource, patient_id, organisation) -> dict:
    """The Result a standalone Observation (or a panel in no report) is held as: kind "observation"."""
    system, code = code_of(resource.code)
    return {
        "patient_id": patient_id,
        "source_organisation_id": organisation.pk,
        "effective_at": observation_effective(resource),
        "recorded_at": to_datetime(resource.issued),
        "source_updated_at": last_updated(resource),
        "sensitive": is_sensitive(resource),
        "entered_in_error": resource.status == "entered-in-error",
        "kind": Result.Kind.OBSERVATION,
        "observation_category": category_of(resource),
        "name": text_of(resource.code) or "Observation",
        "code_system": system,
        "code": code,
        "codings": codings_of(resource.code),
        "status": resource.status,
        "conclusion": "\n".join(note.text for note in resource.note or [] if note.text),
    }


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


def _quantity_text(quantity) -> str:
    if quantity is None or quantity.value is None:
        return ""
    return f"{quantity.comparator or ''}{quantity.value} {quantity.unit or quantity.code or ''}".strip()


def _range_text(reference_range) -> str:
    """A reference range as a person reads it: its text, else "low to high", with whom it applies to."""
    if reference_range.text:
        return reference_range.text
    low, high = _quantity_text(reference_range.low), _quantity_text(reference_range.high)
    bounds = f"{low} to {high}" if low and high else f">= {low}" if low else f"<= {high}" if high else ""
    qualifiers = [text_of(reference_range.type), *texts_of(reference_range.appliesTo)]
    if reference_range.age is not None:
        qualifiers.append(f"age {_quantity_text(reference_range.age.low)}-{_quantity_text(reference_range.age.high)}")
    qualifier = ", ".join(filter(None, qualifiers))
    return f"{bounds} ({qualifier})" if bounds and qualifier else bounds or qualifier


def reference_text(ranges) -> str:
    """What the low/high columns cannot hold: the first range's text, and every further range, as text."""
    if not ranges:
        return ""
    texts = [ranges[0].text or "", *(_range_text(r) for r in ranges[1:])]
    return "; ".join(text for text in texts if text)


def interpretation_text(concepts) -> str:
    """Every interpretation as the source worded it (text, else each coding's display, else its code)."""
    words = []
    for meaning in concepts or []:
        if meaning.text:
            words.append(meaning.text)
            continue
        words.extend(coding.display or coding.code for coding in meaning.coding or [] if coding.display or coding.code)
    return ", ".join(dict.fromkeys(words))


def value_row(code_concept, holder, *, category="", reading=("", "")) -> dict:
    """One value: what was measured (every coding), the result, its unit as written and as UCUM, the reference
    range, the interpretation and abnormal flag; a component names the reading it is part of."""
    system, code = code_of(code_concept)
    value, value_text, unit, unit_system, unit_code = None, "", "", "", ""
    if getattr(holder, "valueQuantity", None) is not None:
        quantity = holder.valueQuantity
        value, value_text = _quantity(quantity)
        unit, unit_system, unit_code = quantity.unit or quantity.code or "", quantity.system or "", quantity.code or ""
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
    flags = [FLAGS[c] for meaning in holder.interpretation or [] for c in sorted(codes_in(meaning)) if c in FLAGS]
    return {
        "name": text_of(code_concept) or "Observation",
        "code_system": system,
        "code": code,
        "codings": codings_of(code_concept),
        "value": value,
        "value_text": value_text,
        "unit": unit,
        "unit_system": unit_system,
        "unit_code": unit_code,
        "observation_category": category,
        "reading_name": reading[0],
        "reading_code": reading[1],
        "interpretation": interpretation_text(holder.interpretation),
        "reference_text": reference_text(ranges),
        "reference_low": _quantity(ranges[0].low)[0] if ranges else None,
        "reference_high": _quantity(ranges[0].high)[0] if ranges else None,
        "flag": flags[0] if flags else "",
    }


def value_rows(resource) -> list[dict]:
    """The observation's own value (or, for a finding with no value and no parts, the finding itself), then
    one per component, each naming its reading. A panel with members and no value of its own gives none: its
    members carry the values."""
    category = category_of(resource)
    rows = []
    if _has_value(resource) or resource.dataAbsentReason or not (resource.component or resource.hasMember):
        rows.append(value_row(resource.code, resource, category=category))
    reading = (text_of(resource.code) or "Observation", code_of(resource.code)[1])
    rows.extend(
        value_row(component.code, component, category=category, reading=reading)
        for component in resource.component or []
    )
    return rows


# --- placement: who owns each observation -----------------------------------------------------------------


class Links:
    """The report/panel -> observation links known: what earlier submissions said, with what this one says
    in place of what its own reports and panels said before."""

    def __init__(self, links: set[tuple[str, str]]):
        self.parents = defaultdict(set)
        for parent, child in links:
            self.parents[child].add(parent)

    def owner(self, key: str) -> str | None:
        """The one parent followed upwards: a report before a panel, then by key, so that the choice depends
        on what is known, never on the order it arrived in."""
        parents = self.parents.get(key)
        return min(parents, key=lambda p: (not p.startswith(REPORT), p)) if parents else None

    def top(self, key: str) -> str:
        seen = [key]
        while (parent := self.owner(seen[-1])) is not None and parent not in seen and len(seen) <= LINK_DEPTH:
            seen.append(parent)
        return seen[-1]

    def ancestors(self, key: str) -> list[str]:
        found, frontier = [], [key]
        while frontier:
            parents = {p for k in frontier for p in self.parents.get(k, ()) if p not in found and p != key}
            found.extend(sorted(parents))
            frontier = parents
        return found


def _links_sent(ctx, reports: dict, observations: dict) -> dict[str, set[str]]:
    """What each report (`result`) and panel (`hasMember`) in this submission lists, as observation keys."""
    sent = {}
    for key, (outcome, _) in reports.items():
        sent[key] = _observation_keys(ctx, outcome.entry.resource.result, key)
    for key, outcome in observations.items():
        if outcome.entry.resource.hasMember:
            sent[key] = _observation_keys(ctx, outcome.entry.resource.hasMember, key)
    return sent


def _observation_keys(ctx, references, parent: str) -> set[str]:
    keys = {ctx.key(reference) for reference in references or []}
    return {key for key in keys if key and key.startswith(PANEL) and key != parent}


def _either(field_a: str, field_b: str, values):
    return Q(any_of(field_a, values)) | Q(any_of(field_b, values))


def _stored_links(organisation, keys: set[str]) -> set[tuple[str, str]]:
    """Every link stored for this organisation reachable from `keys` (a report, its panels, their members):
    one query per level, and one in all when nothing links them."""
    links, seen, frontier = set(), set(), set(keys)
    for _ in range(LINK_DEPTH):
        if not frontier:
            break
        seen |= frontier
        found = set(
            ResultLink.objects.filter(organisation=organisation)
            .filter(_either("parent", "child", frontier))
            .values_list("parent", "child")
        )
        links |= found
        frontier = {key for link in found for key in link} - seen
    return links


def _save_links(organisation, sent: dict[str, set[str]], stored: set[tuple[str, str]]) -> dict[str, str]:
    """Store what each report and panel lists now; return each parent's status (created/updated/unchanged)."""
    before = defaultdict(set)
    for parent, child in stored:
        before[parent].add(child)
    gone = [(parent, child) for parent in sent for child in before[parent] - sent[parent]]
    new = [(parent, child) for parent in sent for child in sorted(sent[parent] - before[parent])]
    for parent, child in gone:
        ResultLink.objects.filter(organisation=organisation, parent=parent, child=child).delete()
    write_rows(
        ResultLink,
        [{"organisation_id": organisation.pk, "parent": parent, "child": child} for parent, child in new],
        ignore_conflicts=True,  # the same links written at the same moment by a concurrent import
    )
    changed = {parent for parent, _ in (*gone, *new)}
    return {parent: UNCHANGED if parent not in changed else UPDATED if before[parent] else CREATED for parent in sent}


# --- writing ------------------------------------------------------------------------------------------


def _values_of(keys, organisation, *fields):
    """The stored values of these observations sent by this organisation. Looked up by source_id alone (its
    index is selective) and narrowed to the organisation here, which keeps the query plan simple at any size."""
    if not keys:
        return []
    rows = (
        Observation.objects.filter(any_of("source_id", keys))
        .order_by()
        .values("result__source_organisation_id", "source_id", *fields)
    )
    return [row for row in rows if row.pop("result__source_organisation_id") == organisation.pk]


def _comparable(row: dict) -> tuple:
    return tuple(
        json.dumps(row[f], sort_keys=True) if f == "codings" else row[f]  # lists are not hashable
        for f in VALUE_FIELDS
    )


class _Import:
    """One submission's reports and observations: placed, written, and what became of each."""

    def __init__(self, report_outcomes, observation_outcomes, ctx):
        self.ctx, self.organisation = ctx, ctx.organisation
        self.reports = {}
        for outcome in report_outcomes:
            try:
                self.reports[outcome.key] = (outcome, map_report(outcome.entry.resource, ctx))
            except Unmappable as exc:
                outcome.reject(exc.issue)
        self.observations = {outcome.key: outcome for outcome in observation_outcomes}

    def run(self) -> None:
        sent = _links_sent(self.ctx, self.reports, self.observations)
        seeds = {*self.reports, *self.observations, *(child for children in sent.values() for child in children)}
        stored = _stored_links(self.organisation, seeds)
        keys = seeds | {key for link in stored for key in link}
        # What upsert compares, read once for both: placing needs these Results' patients and versions.
        self.held = held_rows(Result, keys, organisation_id=self.organisation.pk)
        # An older version of a report or panel than the one held changes none of its links either.
        sent = {parent: children for parent, children in sent.items() if not self._stale(parent)}
        self.links = Links({link for link in stored if link[0] not in sent} | {(p, c) for p in sent for c in sent[p]})
        planned = self._plan()
        self._sensitive_members(planned)
        # Links are kept for the reports and panels stored, not for those refused.
        sent = {
            parent: children for parent, children in sent.items() if parent in self.result_rows or parent in planned
        }
        link_statuses = _save_links(self.organisation, sent, {link for link in stored if link[0] in sent})
        statuses = upsert(
            Result,
            self.result_rows,
            organisation_id=self.organisation.pk,
            now=self.ctx.now,
            existing=self.held,
        )
        for key, (outcome, _) in self.reports.items():
            outcome.finish(statuses[key].status, stale=statuses[key].stale)
            outcome.finish(link_statuses.get(key, UNCHANGED))
        self.results = {key: row["pk"] for key, row in self.held.items()}
        self.results.update((key, s.pk) for key, s in statuses.items() if s.pk is not None)
        moved = self._move_held(keys - set(planned))
        self._replace_values(planned, statuses, link_statuses, locked={s.pk for s in statuses.values() if s.written})
        self._remove_emptied(keys)
        for parent in {parent for key in moved for parent in self.links.ancestors(key)}:
            outcome = self.reports[parent][0] if parent in self.reports else self.observations.get(parent)
            if outcome is not None:
                outcome.finish(UPDATED)

    def _stale(self, key: str) -> bool:
        outcome = self.reports[key][0] if key in self.reports else self.observations[key]
        incoming, held = last_updated(outcome.entry.resource), self.held.get(key, {}).get("source_updated_at")
        return bool(incoming and held and incoming < held)

    def _patient_of(self, key: str):
        """The patient of a Result being written now, or held; None if neither."""
        if key in self.result_rows:
            return self.result_rows[key]["patient_id"]
        return self.held[key]["patient_id"] if key in self.held else None

    def _plan(self) -> dict:
        """Each observation's owner, patient and values; the Results to upsert (reports, and observations that
        are their own owner). Owners first, so that a member without a subject can take its owner's patient."""
        self.result_rows = {key: fields for key, (_, fields) in self.reports.items()}
        planned = {}  # observation key -> (owner key, values, patient id, effective)
        for key in sorted(self.observations, key=lambda key: self.links.top(key) != key):
            outcome, owner = self.observations[key], self.links.top(key)
            resource = outcome.entry.resource
            owner_patient = self._patient_of(owner) if owner != key else None
            try:
                if resource.subject is None and owner_patient is not None:
                    patient_id = owner_patient
                else:
                    patient_id = self.ctx.patient_id(resource.subject, "Observation.subject")
            except Unmappable as exc:
                outcome.reject(exc.issue)
                continue
            if owner_patient is not None and patient_id != owner_patient:
                outcome.reject(
                    error("business-rule", f"Its report {owner} is another patient's.", "Observation.subject")
                )
                continue
            withdrawn = resource.status == "entered-in-error"
            if owner == key:
                self.result_rows[key] = standalone_fields(resource, patient_id, self.organisation)
            elif withdrawn:
                # Its report stays visible, so a withdrawn value inside it is dropped rather than shown.
                outcome.issues.append(information("Entered in error: its values are removed from the report."))
            rows = [] if withdrawn and owner != key else value_rows(resource)
            planned[key] = (owner, rows, patient_id, observation_effective(resource))
        return planned

    def _sensitive_members(self, planned) -> None:
        """A report (or panel) holding a value labelled restricted is itself restricted: a value's visibility
        follows its Result's, so an unlabelled report would otherwise show a restricted value to every partner
        (H-11). Its members' labels are those sent now, else those of their latest kept versions, so the report
        stays restricted when it is sent again alone; a Result already held is updated in place."""
        labelled = {key for key in planned if is_sensitive(self.observations[key].entry.resource)}
        earlier = {
            key
            for key in self.links.parents
            if key not in self.observations and any(self.links.top(key) == owner for owner in self.result_rows)
        }
        if earlier:
            kept = ReceivedResource.objects.newest(
                (self.organisation.pk, "Observation", key.removeprefix(PANEL)) for key in earlier
            )
            labelled |= {
                f"{PANEL}{row.resource_id}" for row in kept.only("resource_id", "json") if labelled_sensitive(row.json)
            }
        owners = {self.links.top(key) for key in labelled} - labelled
        for owner in owners & set(self.result_rows):
            self.result_rows[owner]["sensitive"] = True
        held = [self.held[owner]["pk"] for owner in owners - set(self.result_rows) if owner in self.held]
        if held:
            Result.objects.filter(any_of("pk", held), sensitive=False).update(sensitive=True)

    def _move_held(self, keys: set[str]) -> set[str]:
        """Values sent before their report or panel was known move under their top-most owner, now held."""
        observation_keys = {key for key in keys if key.startswith(PANEL)}
        by_target, moved = defaultdict(list), set()
        for row in _values_of(observation_keys, self.organisation, "id", "patient_id", "result__source_id"):
            key, owner = row["source_id"], self.links.top(row["source_id"])
            if owner == row["result__source_id"] or owner not in self.results:
                continue
            if self._patient_of(owner) not in (None, row["patient_id"]):
                self._warn_parents(key, f"{key} is another patient's: its values stay where they are.")
                continue
            by_target[self.results[owner]].append(row["id"])
            moved.add(key)
        for pk, ids in by_target.items():
            Observation.objects.filter(any_of("pk", ids)).update(result_id=pk)
        return moved

    def _warn_parents(self, key: str, text: str) -> None:
        for parent in self.links.ancestors(key):
            if parent in self.reports:
                self.reports[parent][0].issues.append(warning("business-rule", text))

    def _replace_values(self, planned, statuses, link_statuses, locked) -> None:
        """Compare each observation's values with those held; replace only those that changed."""
        touched = {self.results[owner] for owner, *_ in planned.values() if owner in self.results} - locked
        if connection.features.has_select_for_update and touched:
            # Two imports of the same observation at once: the second waits here (or at the upsert, which locks
            # the Results it wrote), then reads the first's values.
            list(Result.objects.select_for_update().filter(any_of("pk", touched)).order_by("pk").values_list("pk"))
        held, held_ids = {}, defaultdict(list)
        for row in _values_of(planned, self.organisation, "id", *VALUE_FIELDS):
            held.setdefault(row["source_id"], Counter())[_comparable(row)] += 1
            held_ids[row["source_id"]].append(row["id"])
        to_delete, to_insert = [], []
        for key, (owner, rows, patient_id, effective) in planned.items():
            outcome = self.observations[key]
            if owner not in self.results:
                outcome.reject(error("not-found", f"The report {owner} for this observation was not stored."))
                continue
            # An older copy than the one held, of the observation or of the report it is sent in, changes none of
            # the values: a late-arriving preliminary report never overwrites the final's results (H-14).
            if (key in statuses and statuses[key].stale) or (
                owner in statuses and statuses[owner].stale and owner in self.reports
            ):
                outcome.finish(UNCHANGED, stale=True)
                continue
            new = [
                {
                    **clip(Observation, dict(row)),
                    "result_id": self.results[owner],
                    "patient_id": patient_id,
                    "effective_at": effective,
                    "source_id": key,
                }
                for row in rows
            ]
            if key not in held:  # nothing held to compare with (a new result): no need to key its values
                values_status = CREATED if new else UNCHANGED
            else:
                values_status = UNCHANGED if Counter(_comparable(value) for value in new) == held[key] else UPDATED
            if values_status != UNCHANGED:
                to_delete.extend(held_ids[key])
                to_insert.extend(new)
            # A panel or member inside a report stores nothing of its own: it shares its report's fate.
            own = statuses.get(key) or statuses.get(owner)
            outcome.finish(strongest(own.status if own else UNCHANGED, link_statuses.get(key, UNCHANGED)))
            if rows or key in held:
                outcome.finish(values_status)
        if to_delete:
            Observation.objects.filter(any_of("pk", to_delete)).delete()
        write_rows(Observation, to_insert)

    def _remove_emptied(self, keys: set[str]) -> None:
        """An observation's own Result, once it belongs to a report or panel and its values have moved there."""
        owned = [key for key in keys if key in self.held and key.startswith(PANEL) and self.links.top(key) != key]
        if owned:
            Result.objects.filter(
                source_organisation=self.organisation, source_id__in=owned, observations__isnull=True
            ).delete()


def save_results(report_outcomes, observation_outcomes, ctx) -> None:
    _Import(report_outcomes, observation_outcomes, ctx).run()


# --- out: the read API ------------------------------------------------------------------------------------

reads("DiagnosticReport", Category.RESULTS, rank=90)  # Results of kind "report" only: see `result` below
reads("Observation", Category.RESULTS, rank=100)  # values, served from the value rows (read.MODELS)


def readings(entry: Result) -> list[Observation]:
    """One value row per Observation the report lists (a blood pressure's components are one reading): the
    first row of each, whose id is that Observation's id in the read API."""
    first_rows = {}
    for value in sorted(entry.observations.all(), key=lambda value: value.pk):
        first_rows.setdefault(value.source_id or value.pk, value)
    return list(first_rows.values())


@builds(Result)
def result(entry: Result) -> dict | None:
    """A report as its DiagnosticReport, listing its observations in `result`. A standalone observation
    (kind "observation") gives None: it is given back as the Observation it was, never as a report."""
    if entry.kind == Result.Kind.OBSERVATION:
        return None
    return {
        "resourceType": "DiagnosticReport",
        "status": entry.status if entry.status in REPORT_STATUSES else "unknown",
        "code": concept(entry, entry.name),
        "subject": patient_reference(entry.patient_id),
        "effectiveDateTime": entry.effective_at,
        "issued": entry.recorded_at,
        "conclusion": entry.conclusion or None,
        "result": [
            {"reference": f"Observation/{value.pk}", "display": value.reading_name or value.name}
            for value in readings(entry)
        ]
        or None,
    }
