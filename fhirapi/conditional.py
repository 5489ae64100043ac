"""Conditional create and update, conditional references and contained resources: what a submission's entries
and references name, settled before anything is written (FHIR R4 http.html#ccreate and #cond-update, the
transaction rules for conditional references, references.html#contained).

Only `identifier` is searched on (`Type?identifier=system|value`, any FHIR token form); anything else is
`not-supported`, naming the parameter. What a search finds:
- an NHS number (`Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|…`) finds the patient the shared record
  holds with it, whoever sent them (there is one at most), or one a Patient in the same submission brings;
- an ODS code (`Organization?identifier=https://fhir.nhs.uk/Id/ods-organization-code|…`) the organisation;
- any other identifier finds the sender's own resources of that type whose latest version (as kept in
  ReceivedResource, or as sent in this submission) carries it: one organisation never reaches another's.

- **Conditional create** (`Bundle.entry.request.ifNoneExist`, the `If-None-Exist` header on POST): a match and
  nothing is created or changed, the entry answers 200 with the existing resource's location, and the rest of the
  submission's references to the entry (its fullUrl, its id) mean the resource it matched; no match, it is
  imported; several, 412 (`multiple-matches`).
- **Conditional update** (`PUT [base]/Patient?identifier=…`, `request.url` of a PUT entry): one match is updated
  (a Patient through the per-source demographics rules like any other, mapping/patients.py); none, created;
  several, 412. The resource must carry the identifier its condition names (or the update could land on one
  resource with another's content), and an id it gives must be the one found (400).
- **Conditional references**: resolved before any entry is applied, against what is held and what the same
  submission brings. One match, the reference means it (and is kept with the resource as what it resolved to);
  none, `not-found` naming the element (422); several, `multiple-matches` (412): never a guess. The spec defines
  them for transactions; carerecord resolves them the same way in a batch, a collection or a single resource.
- **Contained resources** (`#id`): a local reference must name a resource contained in the same resource (ref-1),
  else `not-found` naming the element. What a contained resource means is for the Context (context.py).
"""

import json
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field

from django.db import connection
from django.db.models import Q, TextField
from django.db.models.functions import Cast
from fhir.resources.R4B.reference import Reference
from pydantic import BaseModel

from directory.models import Organisation
from patients.models import Observation, Patient, Result, SourceDemographics, SourcePatientId

from .models import ReceivedResource, key_for
from .outcome import error, information, warning
from .references import (
    BadCondition,
    Conditional,
    conditional,
    has_special,
    identifiers_of,
    is_conditional,
    is_local,
    special_references,
)
from .systems import NHS_NUMBER, ODS_CODE
from .upsert import REJECTED, UNCHANGED

PRECONDITION_FAILED = 412
BAD_REQUEST = 400
LISTED = 5  # matches named in a multiple-matches diagnostic


@dataclass
class Found:
    """What one search found: the sender's resources (keys), and the patient or organisation a national
    identifier names (True: one a Patient or Organization in the same submission brings)."""

    keys: set[str] = field(default_factory=set)
    national: object = None

    def count(self, condition: Conditional) -> int:
        if condition.national:
            return 1 if self.national is not None or self.keys else 0
        return len(self.keys)


def prepare(outcomes: list, ctx) -> None:
    """Settle, for the entries about to be applied, their conditional creates and updates, then their fullUrls,
    then their conditional and local references (a few queries, and none when nothing is conditional)."""
    pending = [o for o in outcomes if o.key and not o.status and o.entry.resource is not None]
    if _conditional_writes(pending, ctx):
        _refuse_shared_keys(outcomes)
    ctx.full_urls.update({o.entry.full_url: o.key for o in outcomes if o.key and o.entry.full_url})
    _references([o for o in pending if not o.status], ctx)


# Searching


def search(ctx, conditions, sent: dict[str, list] | None = None) -> dict[Conditional, Found]:
    """Each condition's matches: what is held (and, with `sent`, what this submission brings: type -> [(key,
    resource)]). One query per kind of national identifier, one or two per type of the sender's."""
    found = {condition: Found() for condition in conditions}
    patients = [c for c in conditions if c.nhs_number]
    if patients:
        wanted = {c.nhs_number for c in patients} - set(ctx.patients_by_nhs_number)
        if wanted:
            rows = Patient.objects.filter(nhs_number__in=wanted).values_list("nhs_number", "id")
            ctx.patients_by_nhs_number.update(rows)
        for condition in patients:
            found[condition].national = ctx.patients_by_nhs_number.get(condition.nhs_number)
    organisations = [c for c in conditions if c.ods_code]
    if organisations:
        rows = Organisation.objects.filter(ods_code__in={c.ods_code for c in organisations}).values_list(
            "ods_code", "id"
        )
        known = dict(rows)
        for condition in organisations:
            found[condition].national = known.get(condition.ods_code)
    by_type = defaultdict(list)
    for condition in conditions:
        if not condition.nhs_number:  # a patient is found by NHS number, not by who sent which resource
            by_type[condition.resource_type].append(condition)
    sent = sent or {}
    for resource_type, wanted in by_type.items():
        mine = sent.get(resource_type, [])
        for key, resource in mine:
            for condition in wanted:
                if _carries(resource, condition):
                    found[condition].keys.add(ctx.aliases.get(key, key))
        held = _held(ctx.organisation, resource_type, wanted, skip={key for key, _ in mine})
        for condition, keys in held.items():
            found[condition].keys |= {ctx.aliases.get(key, key) for key in keys}
    for _, resource in sent.get("Patient", []):
        for condition in patients:
            if found[condition].national is None and _carries(resource, condition):
                found[condition].national = True
    return found


def _carries(resource, condition: Conditional) -> bool:
    return any(condition.matches(identifier) for identifier in identifiers_of(resource))


def _held(organisation, resource_type: str, conditions: list, *, skip: set[str]) -> dict[Conditional, set[str]]:
    """The sender's kept resources of a type whose latest version carries each identifier. Candidates by the
    JSON (containment on PostgreSQL; the text on SQLite), then checked on the latest version."""
    rows = ReceivedResource.objects.filter(organisation=organisation, resource_type=resource_type)
    wanted = Q(pk__in=[])
    if connection.vendor == "postgresql":
        for condition in conditions:
            pattern = {
                name: value for name, value in (("system", condition.system), ("value", condition.value)) if value
            }
            wanted |= Q(json__identifier__contains=[pattern]) | Q(json__identifier__contains=pattern)
    else:
        rows = rows.annotate(as_text=Cast("json", TextField()))
        for condition in conditions:
            wanted |= Q(as_text__contains=json.dumps(condition.value or condition.system or "")[1:-1])
    ids = {
        i for i in rows.filter(wanted).values_list("resource_id", flat=True) if key_for(resource_type, i) not in skip
    }
    matched = {condition: set() for condition in conditions}
    if not ids:
        return matched
    latest = ReceivedResource.objects.newest((organisation.pk, resource_type, i) for i in ids)
    for resource_id, data in latest.values_list("resource_id", "json"):
        for condition in conditions:
            if _carries(data, condition):
                matched[condition].add(key_for(resource_type, resource_id))
    return matched


def _target(condition: Conditional, found: Found) -> str:
    """The key a single match is known by here: the sender's resource, or (a national identifier no one of the
    sender's resources carries alone) the identifier itself, which the Context resolves."""
    if condition.nhs_number:
        return Conditional("Patient", NHS_NUMBER, condition.nhs_number).text
    if condition.ods_code and len(found.keys) != 1:
        return Conditional("Organization", ODS_CODE, condition.ods_code).text
    [key] = found.keys
    return key


def _described(condition: Conditional) -> str:
    if condition.nhs_number:
        return f"NHS number {condition.nhs_number}"
    if condition.ods_code:
        return f"ODS code {condition.ods_code}"
    return f"identifier {condition.text.split('=', 1)[1]}"


def _none_found(condition: Conditional, expression: str):
    if condition.nhs_number:
        said = "is not a patient the shared record holds: send the Patient first, or in the same bundle."
    elif condition.ods_code:
        said = "is not an organisation the shared record knows: send the Organization first, or in the same bundle."
    else:
        said = (
            f"is on no {condition.resource_type} this organisation has sent: send it first, or in the same bundle "
            "(a conditional reference must match exactly one)."
        )
    return error("not-found", f"{condition.text} matches nothing: {_described(condition)} {said}", expression)


def _several_found(condition: Conditional, found: Found, expression: str):
    keys = sorted(found.keys)
    listed = ", ".join(keys[:LISTED]) + (f" and {len(keys) - LISTED} more" if len(keys) > LISTED else "")
    return error(
        "multiple-matches",
        f"{condition.text} matches {len(keys)} resources this organisation has sent ({listed}): it must match "
        "exactly one, so none is taken. Name the resource by its id, or by an identifier only it carries.",
        expression,
    )


# Conditional create and update

CREATE, UPDATE = "ifNoneExist", "conditional update"


def _conditional_writes(pending: list, ctx) -> bool:
    """Settle each conditional create and update; True if an entry now stands for another key."""
    asks = [ask for outcome in pending if (ask := _ask(outcome)) is not None]
    if not asks:
        return False
    found = search(ctx, {condition for _, condition, _, _ in asks})
    rekeyed = False
    for outcome, condition, kind, expression in asks:
        if kind == CREATE:
            _create_unless_found(outcome, condition, found[condition], expression, ctx)
        else:
            rekeyed |= _update_found(outcome, condition, found[condition], expression, ctx)
    return rekeyed


def _ask(outcome):
    """(outcome, condition, kind, expression) for a conditional create or update; None for a plain write."""
    entry = outcome.entry
    in_bundle = entry.expression.startswith("Bundle.")
    if entry.if_none_exist:
        expression = f"Bundle.entry[{entry.index}].request.ifNoneExist" if in_bundle else ""
        if entry.method == "PUT":
            outcome.reject(
                error(
                    "invalid",
                    "ifNoneExist is for a create (POST): a conditional update's condition is its request.url "
                    "(PUT <Type>?identifier=system|value).",
                    expression,
                )
            )
            return None
        text, kind = entry.if_none_exist, CREATE
    elif entry.method == "PUT" and "?" in entry.url:
        expression = f"Bundle.entry[{entry.index}].request.url" if in_bundle else ""
        text, kind = entry.url, UPDATE
    else:
        return None
    try:
        condition = conditional(text, entry.resource_type)
    except BadCondition as exc:
        outcome.reject(exc.issue(expression))
        return None
    return outcome, condition, kind, expression


def _create_unless_found(outcome, condition: Conditional, found: Found, expression: str, ctx) -> None:
    count = found.count(condition)
    if count == 0:
        outcome.issues.append(information(f"ifNoneExist {condition.text}: no match, so it is imported.", expression))
        return
    if count > 1:
        _precondition_failed(outcome, _several_found(condition, found, expression))
        return
    target = _target(condition, found)
    if target != outcome.key:
        ctx.aliases[outcome.key] = target
    outcome.patient_id = _patient_of(condition, found, target, ctx)
    outcome.location = location_of(outcome.entry.resource_type, target, outcome.patient_id, ctx)
    outcome.matched = True
    outcome.finish(UNCHANGED)
    outcome.issues.append(
        information(
            f"ifNoneExist {condition.text} matched {outcome.location or target}: nothing was created or changed "
            "(a conditional create), and this entry's fullUrl and id mean that resource.",
            expression,
        )
    )


def _update_found(outcome, condition: Conditional, found: Found, expression: str, ctx) -> bool:
    """One match updated (the entry takes its key), none created, several refused. True if re-keyed."""
    resource_type = outcome.entry.resource_type
    if not _carries(outcome.entry.resource, condition):
        outcome.reject(
            error(
                "invalid",
                f"The {resource_type} sent does not carry {_described(condition)}, which its condition "
                f"({condition.text}) names: a conditional update changes the resource it finds, so it must be that "
                "resource.",
                f"{resource_type}.identifier",
            )
        )
        outcome.http_status = BAD_REQUEST
        return False
    if condition.nhs_number:
        target = _patients_copy(found.national, ctx) if found.national is not None else None
        count = 0 if found.national is None else 1
    else:  # an ODS code names one organisation, whichever of the sender's Organizations carry it
        count = found.count(condition)
        target = next(iter(found.keys)) if len(found.keys) == 1 else None
    if count > 1:
        _precondition_failed(outcome, _several_found(condition, found, expression))
        return False
    if count == 0:
        outcome.issues.append(information(f"{condition.text}: no match, so it is created (a conditional update)."))
        return False
    own_id = outcome.entry.resource.id
    if target and own_id and f"{resource_type}/{own_id}" != target:
        outcome.reject(
            error(
                "invalid",
                f"{condition.text} matches {target}, but the resource's id is {own_id}: give the id of the resource "
                "it matches, or none.",
                f"{resource_type}.id",
            )
        )
        outcome.http_status = BAD_REQUEST
        return False
    outcome.issues.append(information(f"{condition.text} matched {target or _described(condition)}: it is updated."))
    if target and target != outcome.key:
        outcome.key = target
        return True
    return False


def _patients_copy(patient_id, ctx) -> str | None:
    """The key this sender's copy of a patient's demographics was last sent under (SourceDemographics: one copy
    per patient per sender), which a conditional update by NHS number updates."""
    copies = SourceDemographics.objects.filter(patient_id=patient_id, organisation=ctx.organisation)
    return copies.values_list("resource_id", flat=True).first() or None


def _precondition_failed(outcome, issue) -> None:
    outcome.reject(issue)
    outcome.http_status = PRECONDITION_FAILED


def _refuse_shared_keys(outcomes: list) -> None:
    """After conditional updates took the keys they matched, two entries may stand for one resource."""
    seen = set()
    for outcome in outcomes:
        if not outcome.key or outcome.status == REJECTED:
            continue
        if outcome.key in seen:
            outcome.reject(
                error("duplicate", f"{outcome.key} appears more than once in what was sent.", outcome.entry.expression)
            )
        seen.add(outcome.key)


def _patient_of(condition: Conditional, found: Found, target: str, ctx):
    if condition.nhs_number:
        return found.national
    if condition.resource_type != "Patient":
        return None
    return (
        SourcePatientId.objects.filter(organisation=ctx.organisation, resource_id=target)
        .values_list("patient_id", flat=True)
        .first()
    )


def location_of(resource_type: str, key: str, patient_id, ctx) -> str:
    """Where the read API serves what a key names (`Patient/<uuid>`, `Condition/12`), or "" where it serves none
    (practitioners, organisations, medications)."""
    if resource_type == "Patient":
        return f"Patient/{patient_id}" if patient_id else ""
    from . import read  # the read API's ids (read imports the mapping package, which imports this one's users)

    if resource_type not in read.SEARCHABLE or resource_type in ("CareTeam", "RelatedPerson"):
        return ""
    if resource_type == "Observation":
        row = Observation.objects.filter(result__source_organisation=ctx.organisation, source_id=key).order_by("pk")
        if (found := row.values_list("pk", flat=True).first()) is not None:
            return f"Observation/{found}"
        panel = Result.objects.filter(source_organisation=ctx.organisation, source_id=key).values_list("pk", flat=True)
        return f"Observation/result-{panel.first()}" if panel.first() is not None else ""
    for model in dict.fromkeys(
        [read.home_model(resource_type), *(part.model for part in read.parts_of(resource_type))]
    ):
        item = model.objects.filter(source_organisation=ctx.organisation, source_id=key).only("pk").first()
        if item is not None:
            return f"{resource_type}/{read.our_id(item, resource_type)}"
    return ""


# Conditional and local references


def _references(pending: list, ctx) -> None:
    """Resolve every conditional reference of the entries to be applied (one search for all of them), check every
    local one names a contained resource, and tell the Context what each `#id` names."""
    special = []
    for outcome in pending:
        if has_special(outcome.reference_texts()):
            special.append((outcome, list(special_references(outcome.as_sent(), outcome.entry.resource_type))))
    if not special:
        return
    conditions, problems = {}, {}
    for _, references in special:
        for _, text in references:
            if is_conditional(text) and text not in conditions and text not in problems:
                try:
                    conditions[text] = conditional(text)
                except BadCondition as exc:
                    problems[text] = exc
    found = search(ctx, set(conditions.values()), _sent(pending)) if conditions else {}
    for text, condition in conditions.items():
        if found[condition].count(condition) == 1:
            ctx.conditional_keys[text] = _target(condition, found[condition])
    for outcome, references in special:
        for path, text in references:
            _check_reference(outcome, path, text, conditions, found, problems)
        if outcome.status != REJECTED and outcome.entry.resource.contained:
            _contain(outcome.entry.resource, ctx)
            _say_what_is_not_read(outcome)


def _sent(outcomes: list) -> dict[str, list]:
    sent = defaultdict(list)
    for outcome in outcomes:
        if outcome.status != REJECTED:
            sent[outcome.entry.resource_type].append((outcome.key, outcome.entry.resource))
    return sent


def _check_reference(outcome, path: str, text: str, conditions, found, problems) -> None:
    if text in problems:
        outcome.reject(problems[text].issue(path))
    elif text in conditions:
        condition = conditions[text]
        count = found[condition].count(condition)
        if count == 0:
            outcome.reject(_none_found(condition, path))
        elif count > 1:
            _precondition_failed(outcome, _several_found(condition, found[condition], path))
    elif is_local(text) and text[1:] not in _contained_ids(outcome.entry.resource):
        outcome.reject(
            error(
                "not-found",
                f"{text} names no resource contained in this one: a local reference needs a contained resource "
                "with that id (ref-1).",
                path,
            )
        )


# What a contained resource can mean here (context.py): a patient named, a drug, a person's or organisation's name.
UNDERSTOOD = {"Patient", "Medication", "Practitioner", "PractitionerRole", "Organization"}


def _say_what_is_not_read(outcome) -> None:
    """A contained resource of another type (an Observation in a report, a Location) is kept with its container
    as sent, but nothing of it reaches the record: said, not silently dropped (H-05)."""
    contained = outcome.entry.resource.contained or []
    others = sorted(f"{c.get_resource_type()} #{c.id}" for c in contained if c.get_resource_type() not in UNDERSTOOD)
    if others:
        outcome.note(
            warning(
                "not-supported",
                f"Contained {', '.join(others)}: kept with this resource as sent, but not part of the record on its "
                "own (a contained resource has no existence of its own; send it as an entry of its own to import it).",
                f"{outcome.entry.resource_type}.contained",
            )
        )


def _contained_ids(resource) -> set[str]:
    return {contained.id for contained in resource.contained or [] if contained.id}


def _contain(resource, ctx) -> None:
    """Tell the Context which contained resource each `#id` in this resource (its contained ones too) names:
    contained resources share their container's ids."""
    by_id = {contained.id: contained for contained in resource.contained or [] if contained.id}
    for reference in _references_in(resource):
        if is_local(reference.reference) and reference.reference[1:] in by_id:
            ctx.contain(reference, by_id[reference.reference[1:]])


def _references_in(model) -> Iterator[Reference]:
    stack = [model]
    while stack:
        item = stack.pop()
        if isinstance(item, Reference):
            yield item
        for name in type(item).model_fields:
            value = getattr(item, name, None)
            if isinstance(value, BaseModel):
                stack.append(value)
            elif isinstance(value, list):
                stack.extend(element for element in value if isinstance(element, BaseModel))
