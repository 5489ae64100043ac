"""Where each resource an applied submission wrote is served here, and its current version: what a write's
`Location` header and a transaction or batch response's `response.location` / `etag` / `lastModified` say.

Carerecord's id, as a read gives it (read.our_id: `Condition/12`, `Encounter/appointment-3`, `Observation/40` or
`Observation/result-7` as read.py numbers them; `Patient/<uuid>` as ingest matched it), and the latest kept
version of the sender's resource (fhirapi.models.ReceivedResource). Found for the whole submission at once: one
query per table its entries were written to and one for the versions, never one per entry (a 1,000-entry
transaction answers 1,000 locations). A Patient is located but has no version here: it is read as the master
view built from every source's copy, not as the copy one sender sent. What is not read back (practitioners,
organisations, medications, Consent, a document's Binary) has no location.
"""

from collections import defaultdict
from typing import NamedTuple

from patients.models import Observation, Result, SourcePatientId, SupportPerson
from sharing.models import Involvement

from . import read
from .models import ReceivedResource, split_key, version_meta
from .upsert import CREATED, UNCHANGED, UPDATED, any_of

WRITTEN = {CREATED, UPDATED, UNCHANGED}


class Located(NamedTuple):  # a tuple: a 1,000-entry transaction makes 1,000 of them
    """`path` is `Type/<our id>`; `version` and `last_updated` those of the latest kept version (None for a
    Patient, whose versions are not served)."""

    path: str
    version: int | None = None
    last_updated: object = None

    @property
    def versioned(self) -> str:
        return f"{self.path}/_history/{self.version}" if self.version else self.path

    @property
    def etag(self) -> str:
        return f'W/"{self.version}"' if self.version else ""


def locate(report) -> list[Located | None]:
    """One per outcome of an applied submission, in order: where it is served, or None (refused, a
    conditional create that matched another resource: its own `location` says where, or not read back here)."""
    located: list[Located | None] = [None] * len(report.outcomes)
    if not report.applied or report.submission is None:
        return located
    organisation_id = report.submission.organisation_id
    wanted = defaultdict(set)  # resource type -> keys
    patients = {}  # a Patient's key -> the patient ingest matched it to: no query
    for outcome in report.outcomes:
        if outcome.status not in WRITTEN or not outcome.key or outcome.matched:
            continue
        if outcome.entry.resource_type == "Patient" and outcome.patient_id is not None:
            patients["Patient", outcome.key] = f"Patient/{outcome.patient_id}"
        else:
            wanted[outcome.entry.resource_type].add(outcome.key)
    paths = {**_paths(organisation_id, wanted), **patients} if wanted else patients
    # Ingest noted the version it kept or found (store_received); an entry it kept none of (older than the copy
    # held, say) is looked up.
    unknown = [
        o.key
        for o in report.outcomes
        if not o.version and o.entry.resource_type != "Patient" and o.key in wanted.get(o.entry.resource_type, ())
    ]
    versions = _versions(organisation_id, unknown) if unknown else {}
    for index, outcome in enumerate(report.outcomes):
        path = paths.get((outcome.entry.resource_type, outcome.key))
        if path is None or outcome.matched or outcome.status not in WRITTEN:
            continue
        if outcome.entry.resource_type == "Patient":
            located[index] = Located(path)
        elif outcome.version:
            located[index] = Located(path, outcome.version, outcome.version_updated)
        else:
            located[index] = Located(path, *versions.get(outcome.key, (None, None)))
    return located


def _paths(organisation_id: int, wanted: dict[str, set[str]]) -> dict[tuple[str, str], str]:
    """(type, key) -> `Type/<our id>`: one query per table the keys may be in."""
    paths = {}
    by_model = defaultdict(dict)  # model -> key -> type
    for resource_type, keys in wanted.items():
        if resource_type == "Patient":
            links = SourcePatientId.objects.filter(any_of("resource_id", keys), organisation_id=organisation_id)
            for key, patient_id in links.values_list("resource_id", "patient_id"):
                paths[resource_type, key] = f"Patient/{patient_id}"
        elif resource_type == read.OBSERVATION:
            paths.update(_observations(organisation_id, keys))
        elif resource_type in read.SEARCHABLE:
            for model in _models_of(resource_type):
                by_model[model].update(dict.fromkeys(keys, resource_type))
    for model, types in by_model.items():
        organisation = "care_team__organisation_id" if model is Involvement else "source_organisation_id"
        rows = model.objects.filter(any_of("source_id", types), **{organisation: organisation_id})
        for key, pk in rows.values_list("source_id", "pk"):
            resource_type = types[key]
            paths[resource_type, key] = f"{resource_type}/{read.our_id(model(pk=pk), resource_type)}"
    return paths


def _models_of(resource_type: str) -> list:
    if resource_type == "RelatedPerson":
        return [SupportPerson]
    if resource_type == "CareTeam":
        return [Involvement]
    return list(dict.fromkeys([read.home_model(resource_type), *(part.model for part in read.parts_of(resource_type))]))


def _observations(organisation_id: int, keys: set[str]) -> dict[tuple[str, str], str]:
    """As read.py numbers them: the first row of the Observation (its own value first), else its Result (a
    standalone panel with no value of its own)."""
    paths = {}
    # By source_id alone (its index is selective), narrowed to the organisation here, as mapping/results.py does.
    rows = (
        Observation.objects.filter(any_of("source_id", keys))
        .order_by()
        .values_list("result__source_organisation_id", "source_id", "pk")
    )
    first = {}
    for sender, key, pk in rows:
        if sender == organisation_id and pk < first.get(key, pk + 1):
            first[key] = pk
    for key, pk in first.items():
        paths[read.OBSERVATION, key] = f"{read.OBSERVATION}/{pk}"
    panelled = [key for key in keys if (read.OBSERVATION, key) not in paths]
    if panelled:
        panels = Result.objects.filter(
            any_of("source_id", panelled), source_organisation_id=organisation_id, kind=Result.Kind.OBSERVATION
        )
        for key, pk in panels.values_list("source_id", "pk"):
            paths[read.OBSERVATION, key] = f"{read.OBSERVATION}/result-{pk}"
    return paths


def _versions(organisation_id: int, keys: list[str]) -> dict[str, tuple[int, object]]:
    """key -> (latest version, its lastUpdated as meta shows it), in one query on the unique index."""
    if not keys:
        return {}
    rows = ReceivedResource.objects.newest((organisation_id, *split_key(key)) for key in keys).only(
        "resource_type", "resource_id", "version", "received_at", "source_updated_at"
    )
    found = {}
    for row in rows:
        meta = version_meta(row)
        found[row.source_id] = (row.version, meta["lastUpdated"])
    return found
