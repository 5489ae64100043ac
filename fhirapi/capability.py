"""The CapabilityStatement at /fhir/metadata (public, as FHIR expects), generated from what is implemented.

Nothing here is written by hand that the code already knows: the readable types are `read.SEARCHABLE`, each
type's search parameters, includes and revincludes are `fhirapi.search`'s registry (the same table the parser
accepts), the stored types are the mapping modules' (`mapping.HANDLED_TYPES`), the message events
`messaging.supported_events`. tests/fhirapi/test_capability.py sends a request for everything declared and
checks that what is not declared is refused, so the statement cannot drift from the code. Decisions (what is
declared, what is refused, why the security service is text only): docs/adr/0008-honest-fhir-reads.md.
"""

from django.conf import settings
from django.utils import timezone
from fhir.resources.R4B.capabilitystatement import CapabilityStatement

from . import search
from .history import HISTORY_PARAMS
from .mapping import DIRECTORY_TYPES, HANDLED_TYPES
from .messaging import supported_events
from .read import BINARY, SEARCHABLE

PATIENT = "Patient"
EVERYTHING = "http://hl7.org/fhir/OperationDefinition/Patient-everything"
PROCESS_MESSAGE = "http://hl7.org/fhir/OperationDefinition/MessageHeader-process-message"
# Conditional create and update, by `identifier` only (fhirapi.conditional); references literal, by identifier,
# conditional, and to contained resources.
CONDITIONAL = {"conditionalCreate": True, "conditionalUpdate": True, "referencePolicy": ["literal", "logical", "local"]}
# Types accepted in writes that are entries of the record (or act on it): every type the mapping modules handle
# but the names-only ones (a Practitioner, Organization... becomes a name beside an entry, never an entry).
STORED = HANDLED_TYPES - DIRECTORY_TYPES
# Readable types carerecord builds from its own rows, never from a kept resource: they have no versions.
BUILT_ONLY = {
    PATIENT: "The master view, built from every source's copy by the demographics precedence (never one partner's "
    "Patient): no versions are kept of it, so _history holds its current state only and there is no vread.",
    "CareTeam": "carerecord's record of a care relationship (an involvement), built from it: no versions are kept, "
    "so _history holds its current state only and there is no vread.",
}
# FHIR's general parameters: accepted everywhere, changing no result, so declared nowhere.
GENERAL = {"_format", "_pretty"}
# Result parameters declared on each type's search (_include and _revinclude are searchInclude, searchRevInclude).
RESULT_PARAMS = ("_count", "_offset", "_sort", "_summary")
# What Patient?identifier= accepts besides its identifier (search.parse_patient_search), general ones aside.
PATIENT_RESULT_PARAMS = tuple(name for name in RESULT_PARAMS if name in search.PATIENT_SEARCH_RESULTS)
VERSIONED_DOC = (
    "Versions: only of resources received as FHIR (the versions each sender sent, as kept; versionId is "
    "carerecord's number, lastUpdated the sender's meta.lastUpdated of that version, else when carerecord "
    "received it). An entry not received as FHIR (other feeds, built from its row) has no versionId and its "
    "_history holds its current state only."
)


def _security() -> str:
    return (
        "Bearer tokens (RFC 6750, Authorization: Bearer <token>) issued by carerecord's administrators: an "
        "organisation's system's to send records in, a professional's to read (expiring after "
        f"{settings.PERSONAL_TOKEN_HOURS} hours); only a hash is kept. There is no OAuth authorization server or "
        "flow here, so no restful-security-service code is claimed. Reads follow the same access decision and audit "
        "as the record pages: a record the reader may not see is answered 403 'Record not available', exactly as "
        "an unknown id."
    )


def capability_statement(base_url: str) -> CapabilityStatement:
    types = sorted((set(SEARCHABLE) | STORED) - {PATIENT})
    resources = [_patient(), *(_resource(resource_type) for resource_type in types), _binary()]
    return CapabilityStatement(
        status="active",
        date=timezone.now(),
        kind="instance",
        fhirVersion="4.0.1",
        format=["application/fhir+json", "application/fhir+xml"],
        implementation={"description": "Shared care record (UK Core R4)", "url": base_url},
        rest=[
            {
                "mode": "server",
                "documentation": _rest_documentation(),
                "security": {
                    "cors": False,
                    "service": [{"text": "Bearer token (RFC 6750)"}],
                    "description": _security(),
                },
                "resource": resources,
                "interaction": [{"code": "transaction"}, {"code": "batch"}],
                "operation": [{"name": "process-message", "definition": PROCESS_MESSAGE}],
            }
        ],
        messaging=[_messaging(base_url)],
    )


def _rest_documentation() -> str:
    names = ", ".join(sorted(DIRECTORY_TYPES))
    return (
        "Every search is one patient's record (patient=<id>) and follows the record's access decision, sharing "
        "agreements, sensitive entries and objections, with one audit row per request. A search parameter, "
        "modifier or prefix not declared here, or a value that cannot be read, is refused (400 OperationOutcome "
        "naming it), never ignored; with Prefer: handling=lenient an unknown parameter is ignored instead, said in "
        "a warning entry and left out of the links. _format and _pretty are accepted everywhere. "
        f"{names} are accepted in submissions as names only: kept to name the entries that refer to them (an "
        "Organization's ODS code names the organisation), never entries of the record, so neither read nor "
        f"declared for create or update. {VERSIONED_DOC} _history takes "
        f"{', '.join(sorted(HISTORY_PARAMS - GENERAL))} (newest first); any other parameter is refused."
    )


def _interactions(*codes: str) -> list[dict]:
    return [{"code": code} for code in codes]


def _search(resource_type: str, result_params=RESULT_PARAMS) -> dict:
    results = [_sort(resource_type) if name == "_sort" else search.RESULT_PARAMS[name] for name in result_params]
    declared = [*search.params_of(resource_type).values(), *results]
    found = {"searchParam": [_param(param) for param in declared]}
    if includes := search.includes_of(resource_type):
        found["searchInclude"] = includes
    if revincludes := search.revincludes_of(resource_type):
        found["searchRevInclude"] = revincludes
    return found


def _sort(resource_type: str):
    """`_sort` as this type takes it: a type with no date of its own sorts by _lastUpdated only."""
    sorts = search.sorts_of(resource_type)
    if sorts == search.SORTS:
        return search.RESULT_PARAMS["_sort"]
    documentation = f"{' or '.join(sorts)} only: {resource_type} holds nothing dated of its own to sort by."
    return search.Param("_sort", search.RESULT_PARAMS["_sort"].type, documentation)


def _param(param) -> dict:
    out = {"name": param.name, "type": param.type, "documentation": param.documentation}
    if param.definition:
        out["definition"] = param.definition
    return out


def _patient() -> dict:
    everything = "; ".join(f"{p.name} ({p.type}): {p.documentation}" for p in search.EVERYTHING_PARAMS.values())
    return {
        "type": PATIENT,
        "documentation": f"Searched by NHS number only (any active professional, audited). {BUILT_ONLY[PATIENT]} "
        "A Patient sent in updates that sender's copy of the patient's demographics.",
        "interaction": _interactions("read", "history-instance", "search-type", "create", "update"),
        "versioning": "no-version",
        "readHistory": False,
        "updateCreate": True,
        **CONDITIONAL,
        **_search(PATIENT, PATIENT_RESULT_PARAMS),
        "operation": [{"name": "everything", "definition": EVERYTHING, "documentation": everything}],
    }


def _resource(resource_type: str) -> dict:
    """A readable type (read, vread where versions are kept, history, search), a stored one (create, update), or
    both: every readable type is stored."""
    entry = {"type": resource_type}
    codes = []
    if resource_type in SEARCHABLE:
        versioned = resource_type not in BUILT_ONLY
        codes += [*(["read", "vread"] if versioned else ["read"]), "history-instance", "search-type"]
        entry.update(versioning="versioned-update" if versioned else "no-version", readHistory=versioned)
        if not versioned:
            entry["documentation"] = BUILT_ONLY[resource_type]
    else:
        entry["documentation"] = NOT_READ_BACK[resource_type]
    if resource_type in STORED:
        codes += ["create", "update"]
        entry.update(updateCreate=True, **CONDITIONAL)
    if resource_type in SEARCHABLE:
        entry.update(_search(resource_type))
    return {**entry, "interaction": _interactions(*codes)}


# Stored but not readable: what carerecord does with them instead.
NOT_READ_BACK = {
    "Consent": "An objection to sharing (active, patient-privacy, deny, for direct care) opens a case in IG's "
    "queue, never upheld by a feed; any other Consent is kept as sent and not acted on. Not read back: the case "
    "is IG's.",
}


def _binary() -> dict:
    return {
        "type": BINARY,
        "documentation": "A letter's attachment, read through its letter's access decision (Accept: FHIR for a "
        "Binary resource, else the content itself). Accepted in submissions only as the content of a "
        "DocumentReference in the same submission, never on its own.",
        "interaction": _interactions("read"),
    }


def _messaging(base_url: str) -> dict:
    """Where messages go (synchronously) and which events carerecord understands (any other is refused)."""
    events = "; ".join(f"{system}|{code} ({pattern})" for system, code, pattern in supported_events())
    return {
        "endpoint": [
            {
                "protocol": {"system": "http://terminology.hl7.org/CodeSystem/message-transport", "code": "http"},
                "address": f"{base_url}$process-message",
            }
        ],
        "documentation": "Synchronous $process-message (an organisation's token), idempotent by message id. "
        f"Events understood: {events}.",
    }
