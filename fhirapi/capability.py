"""The CapabilityStatement at /fhir/metadata: what this server reads and accepts (public, as FHIR expects)."""

from django.utils import timezone
from fhir.resources.R4B.capabilitystatement import CapabilityStatement

from .mapping import HANDLED_TYPES
from .messaging import supported_events
from .read import SEARCHABLE

PROCESS_MESSAGE = "http://hl7.org/fhir/OperationDefinition/MessageHeader-process-message"
# Conditional create and update, by `identifier` only (fhirapi.conditional); references literal, by identifier,
# conditional, and to contained resources.
CONDITIONAL = {"conditionalCreate": True, "conditionalUpdate": True, "referencePolicy": ["literal", "logical", "local"]}


def capability_statement(base_url: str) -> CapabilityStatement:
    resources = [
        {
            "type": "Patient",
            "interaction": [{"code": "read"}, {"code": "search-type"}, {"code": "create"}, {"code": "update"}],
            **CONDITIONAL,
            "searchParam": [{"name": "identifier", "type": "token"}],
            "operation": [
                {"name": "everything", "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything"}
            ],
        }
    ]
    for resource_type in sorted(set(SEARCHABLE) | HANDLED_TYPES - {"Patient"}):
        interactions = []
        if resource_type in SEARCHABLE:
            interactions += [{"code": "read"}, {"code": "search-type"}]
        if resource_type in HANDLED_TYPES:
            interactions += [{"code": "create"}, {"code": "update"}]
        entry = {"type": resource_type, "interaction": interactions}
        if resource_type in HANDLED_TYPES:
            entry.update(CONDITIONAL)
        if resource_type in SEARCHABLE:
            entry["searchParam"] = [
                {"name": "patient", "type": "reference"},
                {"name": "_count", "type": "number"},
            ]
        resources.append(entry)
    # A letter's attachment: read only (kept when sent as a DocumentReference's content, never on its own).
    resources.append({"type": "Binary", "interaction": [{"code": "read"}]})
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
                "security": {
                    "description": "Bearer tokens: an organisation's to send records in, a professional's to read. "
                    "Reads follow the same access decision and audit as the record pages."
                },
                "resource": resources,
                "interaction": [{"code": "transaction"}, {"code": "batch"}],
                "operation": [{"name": "process-message", "definition": PROCESS_MESSAGE}],
            }
        ],
        messaging=[_messaging(base_url)],
    )


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
