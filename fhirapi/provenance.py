"""Provenance: where the resources on a page of a search came from, one Provenance per submission.

Asked for with `_revinclude=Provenance:target` on a type search (fhirapi.search). Built from what carerecord
recorded as it received each submission (fhirapi.models.Submission: which organisation, through which token or
command, when, as which Bundle or message) and which version of which resource it stored
(ReceivedResource.submission); never from a Provenance a partner sent (those are not imported).

A Provenance targets only resources on the page, each by carerecord's versioned reference
(`Condition/12/_history/2`): a submission may have carried much else, other patients' entries among them, and
naming those would say what else was sent, and about whom. So the same submission's Provenance on another page
(or another patient's) has other targets; its id, the submission's UUID, is the same. Only the versions held for
this patient count (a version from before a correction that named another patient is not this record's).
Entries not received as FHIR (demo data, other feeds), versions kept before submissions were (no submission),
Patient (the master view, no one partner's resource) and CareTeam (carerecord's own) have none.

Two queries for a page, whatever its size: the versions of its resources, and their submissions.
"""

from collections import defaultdict

from django.db.models import Q
from fhir.resources.R4B.provenance import Provenance

from patients.models import Observation, Patient
from sharing.models import Involvement

from .models import ReceivedResource, Submission, split_key
from .read import our_id
from .references import sender_system
from .systems import ODS_CODE
from .upsert import any_of

PARTICIPANT_TYPE = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"
DATA_OPERATION = "http://terminology.hl7.org/CodeSystem/v3-DataOperation"
# The sending organisation wrote what it sent (as far as carerecord can know: the clinicians behind it are the
# resource's own business); the system it came through put it into the form it was sent in.
AUTHOR = {"system": PARTICIPANT_TYPE, "code": "author", "display": "Author"}
ASSEMBLER = {"system": PARTICIPANT_TYPE, "code": "assembler", "display": "Assembler"}
CREATE = {"system": DATA_OPERATION, "code": "CREATE", "display": "create"}
UPDATE = {"system": DATA_OPERATION, "code": "UPDATE", "display": "revise"}


def revincluded(items: list[tuple[str, object]], resources: list, patient) -> list[Provenance]:
    """The Provenance of each submission that sent a version of a resource on this page (`items`: its
    (type, item) pairs, `resources`: what was built for them, in the same order), newest first."""
    served = _served(items, resources)
    if not served:
        return []
    versions = defaultdict(list)  # (organisation id, type, id) -> [(version, submission id)], oldest first
    for *key, version, submission_id in _versions(served, patient):
        versions[tuple(key)].append((version, submission_id))
    targets = defaultdict(list)  # submission id -> [(reference, version)], in page order
    for key, references in served.items():
        for version, submission_id in sorted(versions.get(key, ())):
            targets[submission_id].extend((f"{reference}/_history/{version}", version) for reference in references)
    if not targets:
        return []
    submissions = Submission.objects.filter(pk__in=list(targets)).select_related("organisation", "token")
    return [_provenance(row, targets[row.pk]) for row in submissions.order_by("-received_at", "pk")]


def _served(items, resources) -> dict[tuple, list[str]]:
    """(organisation id, type, id) of the kept resource behind each item served as that resource -> its
    references here (`Type/<our id>`; one, unless the page lists it twice)."""
    served = defaultdict(list)
    for (resource_type, item), resource in zip(items, resources, strict=True):
        key = _kept_key(item)
        # Served as the kept resource only when it is read as the type it arrived as (read.resources); a row
        # built by its category's builder is carerecord's rendering, not a version anyone sent.
        if key is None or key[1] != resource_type or resource.get_resource_type() != resource_type:
            continue
        reference = f"{resource_type}/{resource.id or our_id(item, resource_type)}"
        if reference not in served[key]:
            served[key].append(reference)
    return served


def _kept_key(item) -> tuple | None:
    if isinstance(item, Patient | Involvement) or not getattr(item, "source_id", ""):
        return None
    organisation_id = (
        item.result.source_organisation_id if isinstance(item, Observation) else item.source_organisation_id
    )
    return (organisation_id, *split_key(item.source_id))


def _versions(served: dict, patient):
    """Every version of these resources kept for this patient by a known submission: one query on the
    (organisation, type, id, version) index."""
    by_sender = defaultdict(list)
    for organisation_id, resource_type, resource_id in served:
        by_sender[organisation_id, resource_type].append(resource_id)
    wanted = Q()
    for (organisation_id, resource_type), resource_ids in by_sender.items():
        wanted |= Q(any_of("resource_id", resource_ids), organisation_id=organisation_id, resource_type=resource_type)
    return ReceivedResource.objects.filter(wanted, patient_id=patient.pk, submission__isnull=False).values_list(
        "organisation_id", "resource_type", "resource_id", "version", "submission_id"
    )


def _provenance(submission: Submission, targets: list[tuple[str, int]]) -> Provenance:
    organisation = submission.organisation
    sender = {"identifier": {"system": ODS_CODE, "value": organisation.ods_code}, "display": organisation.name}
    data = {
        "resourceType": "Provenance",
        "id": str(submission.pk),
        "meta": {
            "lastUpdated": submission.received_at,
            "source": sender_system(organisation.ods_code),
            "tag": [{"system": ODS_CODE, "code": organisation.ods_code, "display": organisation.name}],
        },
        "target": [{"reference": reference} for reference, _ in targets],
        "recorded": submission.received_at,
        "agent": [
            {"type": {"coding": [AUTHOR]}, "who": sender},
            {
                "type": {"coding": [ASSEMBLER]},
                "who": {"type": "Device", "display": _system_of(submission)},
                "onBehalfOf": sender,
            },
        ],
    }
    activity = _activity([version for _, version in targets])
    if activity:
        data["activity"] = {"coding": [activity]}
    source = _source(submission)
    if source:
        data["entity"] = [{"role": "source", "what": source}]
    return Provenance.model_validate(data)


def _activity(versions: list[int]) -> dict | None:
    """CREATE when the submission sent each of these resources first, UPDATE when it sent each again; a
    submission that did both is neither (FHIR has one activity per Provenance)."""
    if all(version == 1 for version in versions):
        return CREATE
    if all(version > 1 for version in versions):
        return UPDATE
    return None


def _system_of(submission: Submission) -> str:
    """The system the submission came through, in words: the API token's name (what IG called it when they
    issued it: "EMIS feed"), or the command and who ran it."""
    if submission.token is not None:
        return f"{submission.token.name} (carerecord API token)"
    if submission.endpoint and " /" not in submission.endpoint:  # a command's name, not "POST /fhir/..."
        operator = submission.actor.removeprefix("command:").removeprefix(submission.endpoint).removeprefix("@")
        return f"manage.py {submission.endpoint}" + (f", run by {operator}" if operator else "")
    return "An API token since deleted" if submission.endpoint else "Not recorded"


def _source(submission: Submission) -> dict | None:
    """The Bundle or message it arrived as: by the Bundle's identifier, else the message's id (MessageHeader.id),
    else the Bundle's id; an id as a sender's id (system naming the sender, as a read gives one back). None for
    a single resource, or a Bundle with none of them."""
    ods_code = submission.organisation.ods_code
    bundle_id = submission.bundle_id
    if "|" in bundle_id:
        system, value = bundle_id.split("|", 1)
        return {"type": "Bundle", "identifier": {"system": system, "value": value} if system else {"value": value}}
    if submission.message_id:  # a message with no Bundle.identifier: its id is its MessageHeader's
        identifier = {"system": sender_system(ods_code, "MessageHeader"), "value": submission.message_id}
        return {"type": "MessageHeader", "identifier": identifier}
    if bundle_id.startswith("Bundle/"):
        identifier = {"system": sender_system(ods_code, "Bundle"), "value": bundle_id.removeprefix("Bundle/")}
        return {"type": "Bundle", "identifier": identifier}
    return None
