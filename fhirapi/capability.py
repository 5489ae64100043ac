"""The CapabilityStatement at /fhir/metadata: what this server reads and accepts (public, as FHIR expects)."""

from django.utils import timezone
from fhir.resources.R4B.capabilitystatement import CapabilityStatement

from .mapping import HANDLED_TYPES
from .read import SEARCHABLE


def capability_statement(base_url: str) -> CapabilityStatement:
    resources = [
        {
            "type": "Patient",
            "interaction": [{"code": "read"}, {"code": "search-type"}, {"code": "create"}, {"code": "update"}],
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
        if resource_type in SEARCHABLE:
            entry["searchParam"] = [
                {"name": "patient", "type": "reference"},
                {"name": "_count", "type": "number"},
            ]
        resources.append(entry)
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
            }
        ],
    )
