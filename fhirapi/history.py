"""Versions of a resource as carerecord kept them: `meta.versionId`, `vread` and `_history`.

A version is a `ReceivedResource` row: what one organisation sent of one resource (organisation, type, the
sender's id), numbered 1..n as carerecord stored it. Only resources received as FHIR have versions; an entry
built from its row (demo data, other feeds, CareTeam) and Patient (the master view built from every source's
copy, never one partner's) have only their current state.

Which versions a reader is given is decided as a read is (the item must be visible now) and then, per version:
- only versions of the same patient (a version sent before a correction that named another patient is that
  other patient's record, never this one's: H-06);
- a version the sender labelled sensitive (meta.security R/V) only to the sending organisation's own staff, as
  the record shows sensitive entries (H-11), even when the current version is no longer labelled.
"""

import datetime
import re
from dataclasses import dataclass

from django.utils.dateparse import parse_datetime
from fhir.resources.R4B.bundle import Bundle

from patients.models import LetterAttachment, Observation, Patient
from sharing.models import Involvement

from . import read, serialise
from .mapping.common import labelled_sensitive
from .mapping.letters import KEPT_CONTENT
from .models import ReceivedResource, etag, split_key, version_meta
from .outcome import error
from .resource import model_of

# As read.py pages a search (read imports this module, through serialise).
DEFAULT_COUNT = 50
MAX_COUNT = 200


def stored_key(resource_type: str, item) -> tuple | None:
    """(organisation id, type, id) of the versions behind an item read as `resource_type`, or None where
    carerecord keeps none: an entry not received as FHIR, or received as another type than it is read as (read.py
    serves the kept resource only under its own type), a Patient or an involvement (built from the record)."""
    if isinstance(item, Patient | Involvement) or not getattr(item, "source_id", ""):
        return None
    organisation_id = (
        item.result.source_organisation_id if isinstance(item, Observation) else item.source_organisation_id
    )
    kind, resource_id = split_key(item.source_id)
    return (organisation_id, kind, resource_id) if kind == resource_type and resource_id else None


def versions_of(resource_type: str, item, patient, decision) -> list[ReceivedResource]:
    """The kept versions of a visible item the reader may be given, newest first (one query): this patient's
    only, and sensitive ones as the module says. Empty where carerecord keeps none. The caller has decided access
    and found the item visible (read.visible_item)."""
    key = stored_key(resource_type, item)
    if key is None:
        return []
    organisation_id, kind, resource_id = key
    rows = ReceivedResource.objects.filter(
        organisation_id=organisation_id, resource_type=kind, resource_id=resource_id, patient_id=patient.pk
    ).order_by("-version")
    own = decision.organisation_id == organisation_id
    # The newest is what a read serves (its visibility decided by the record's rule); an earlier one labelled
    # sensitive only to the sender's own staff, though the label has since gone.
    return [row for index, row in enumerate(rows) if own or index == 0 or not labelled_sensitive(row.json)]


# --- the history Bundle and vread -----------------------------------------------------------------------------

NO_VERSIONS = (
    "carerecord keeps versions only of resources received as FHIR: this one is built from the record, and only "
    "its current state is given (GET [base]/{type}/{id}/_history)."
)
HISTORY_PARAMS = {"_count", "_offset", "_since", "_format", "_pretty"}


class BadParameter(Exception):
    def __init__(self, issue):
        super().__init__(issue.diagnostics)
        self.issue = issue


@dataclass(frozen=True)
class HistoryQuery:
    offset: int
    count: int
    since: datetime.datetime | None


def history_query(params) -> HistoryQuery:
    """_count, _offset and _since; any other parameter (FHIR's _at, _list, _sort) is refused, not ignored."""
    for name in params:
        if name not in HISTORY_PARAMS:
            raise BadParameter(error("not-supported", f"{name[:100]} is not supported on _history.", name[:100]))
    offset, count = _number(params, "_offset", 0), _number(params, "_count", DEFAULT_COUNT)
    since = None
    if params.get("_since"):
        # A '+' in an unencoded query string arrives as a space.
        since = parse_datetime(params["_since"].strip().replace(" ", "+"))
        if since is None or since.tzinfo is None:
            raise BadParameter(error("value", "_since is an instant: a date and time with its zone.", "_since"))
    return HistoryQuery(offset, min(count, MAX_COUNT), since)


def _number(params, name: str, default: int) -> int:
    value = params.get(name)
    if value is None:
        return default
    if not re.fullmatch(r"[0-9]{1,9}", value):
        raise BadParameter(error("value", f"{name} is a whole number, 0 or more.", name))
    return int(value)


def version_number(vid: str) -> int | None:
    """A vread's version id: ours are 1, 2, ...; anything else names no version held."""
    return int(vid) if re.fullmatch(r"[1-9][0-9]{0,9}", vid) else None


def as_read(resource_type: str, item, patient, versions: list[ReceivedResource]) -> list:
    """These versions of an item, each as a read serves the current one: carerecord's id, meta (that version's
    versionId and lastUpdated) and references rewritten by the read's resolver (a few queries for them all)."""

    if not versions:
        return []
    organisation = item.result.source_organisation if isinstance(item, Observation) else item.source_organisation
    resolver = read.Resolver(patient, versions)
    resource_id = read.our_id(item, resource_type)
    out = [
        serialise.stored(
            item,
            version,
            resource_id=resource_id,
            organisation=organisation,
            replace=resolver.replacer(version, organisation.ods_code),
        )
        for version in versions
    ]
    if resource_type == "DocumentReference":
        _link_attachments(item, out)
    return out


def _link_attachments(letter, resources: list) -> None:
    """Each version's content as carerecord's `Binary/<id>`, where the letter still holds that content (by its
    SHA-256): never content a version did not have (the letter holds its latest version's attachments)."""

    rows = list(
        LetterAttachment.objects.filter(letter_id=letter.pk)
        .order_by("pk")
        .values("pk", "letter_id", "sha256", "content_type", "title", "size")
    )
    for resource in resources:
        shas = {
            extension.valueString
            for content in resource.content or []
            for extension in content.attachment.extension or []
            if extension.url == KEPT_CONTENT
        }
        read.link_attachments(resource, [row for row in rows if row["sha256"] in shas])


def response_of(received: ReceivedResource) -> dict:
    """What a transaction response (and a history entry) says of a version: its etag and time."""
    return {"etag": etag(received), "lastModified": version_meta(received)["lastUpdated"]}


def entry_of(resource, received: ReceivedResource | None, base_url: str) -> dict:
    """A history entry: the version, and the interaction that made it (POST for version 1, PUT after). The one
    entry of a resource carerecord keeps no versions of is its current state, as an update: when it began is
    not known here."""
    kind, resource_id = resource.get_resource_type(), resource.id
    entry = {"fullUrl": f"{base_url}{kind}/{resource_id}", "resource": resource}
    if received is not None and received.version == 1:
        entry["request"] = {"method": "POST", "url": kind}
        entry["response"] = {"status": "201 Created", **response_of(received)}
    else:
        entry["request"] = {"method": "PUT", "url": f"{kind}/{resource_id}"}
        entry["response"] = {"status": "200 OK", **(response_of(received) if received is not None else {})}
        if received is None and resource.meta is not None and resource.meta.lastUpdated:
            entry["response"]["lastModified"] = resource.meta.lastUpdated
    return entry


def history_page(resource_type: str, item, patient, decision, query: HistoryQuery, base_url: str):
    """(entries, total) of one page of an item's history: its versions since `query.since`, newest first; for
    an item carerecord keeps no versions of (and Patient, the master view), its current state alone."""

    versions = [] if resource_type == "Patient" else versions_of(resource_type, item, patient, decision)
    if versions:
        chosen = since_filter(versions, query.since)
        shown = chosen[query.offset : query.offset + query.count]
        resources = as_read(resource_type, item, patient, shown)
        return [entry_of(r, v, base_url) for r, v in zip(resources, shown, strict=True)], len(chosen)
    if resource_type == "Patient":
        current = serialise.patient(item)
    else:
        [current] = read.resources([(resource_type, item)], patient)
    updated = last_updated_of(current)
    total = 0 if query.since and updated is not None and updated < query.since else 1
    return ([entry_of(current, None, base_url)] if total and query.offset == 0 and query.count else []), total


def history_bundle(entries: list[dict], *, total: int, links: list[dict]) -> Bundle:
    entries = [{**entry, "resource": model_of(entry["resource"])} for entry in entries]
    return Bundle(type="history", total=total, link=links, entry=entries or None)


def last_updated_of(resource) -> datetime.datetime | None:
    value = resource.meta.lastUpdated if resource.meta is not None else None
    if isinstance(value, str):
        value = parse_datetime(value)
    return value


def since_filter(versions: list[ReceivedResource], since) -> list[ReceivedResource]:
    """Versions whose lastUpdated (as meta shows it) is at or after `since`."""
    if since is None:
        return versions
    return [version for version in versions if version_meta(version)["lastUpdated"] >= since]
