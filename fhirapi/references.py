"""What a resource is called here, and what a reference points at.

Every imported resource is known by "<ResourceType>/<id>" (its source_id, unique per sending organisation).
A Bundle entry without an id is known by its urn:uuid fullUrl instead, so resending the same bundle still
finds it; references resolve through the bundle's fullUrls first, then as "<Type>/<id>".

On the way out, a stored resource's references are rewritten (`rewrite`) by the read API's resolver: to
carerecord's ids where carerecord holds what they point at, else kept as what they say without the sender's
address (read.py, `_Resolver`).
"""

import re
from collections.abc import Callable, Iterator

from django.conf import settings

from .parse import Entry

MAX_KEY_LENGTH = 200
# Identifier systems naming a sender's own ids: <base>/<ODS code>/<resource type> (settings.FHIR_SENDER_ID_BASE).
SENDER_IDS = "https://carerecord.example/id"
URI = "urn:ietf:rfc:3986"  # an identifier whose value is a URI
_TYPED_ID = re.compile(r"(?:^|/)([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})(?:/_history/[^/]+)?/?$")
_UUID_URN = "urn:uuid:"


def sender_system(ods_code: str, resource_type: str = "") -> str:
    """The identifier system of one sender's ids (of one type), e.g. https://carerecord.example/id/RX1/Condition:
    the sender's id given back beside carerecord's, and what meta.source names (without a type)."""
    base = getattr(settings, "FHIR_SENDER_ID_BASE", SENDER_IDS).rstrip("/")
    return f"{base}/{ods_code}/{resource_type}" if resource_type else f"{base}/{ods_code}"


def key_of(reference: str | None) -> str | None:
    """'Patient/abc' or 'https://host/fhir/Patient/abc/_history/2' -> 'Patient/abc'; None if it is neither."""
    if not reference:
        return None
    match = _TYPED_ID.search(reference)
    return f"{match[1]}/{match[2]}" if match else None


def entry_key(entry: Entry) -> str | None:
    """The key an entry is stored under: its id; else its urn:uuid fullUrl; else its first identifier."""
    resource = entry.resource
    if resource.id:
        return f"{entry.resource_type}/{resource.id}"
    if entry.full_url.startswith(_UUID_URN):
        return f"{entry.resource_type}/{entry.full_url.removeprefix(_UUID_URN)}"
    from_url = key_of(entry.full_url)
    if from_url and from_url.startswith(f"{entry.resource_type}/"):
        return from_url
    identifiers = getattr(resource, "identifier", None) or []
    for identifier in identifiers if isinstance(identifiers, list) else [identifiers]:
        if identifier.value:
            key = f"{entry.resource_type}?identifier={identifier.system or ''}|{identifier.value}"
            return key if len(key) <= MAX_KEY_LENGTH else None
    return None


def is_reference(value) -> bool:
    """A Reference in FHIR JSON: the only element with a `reference` string (wherever it sits: an element,
    an extension's valueReference, a contained resource)."""
    return isinstance(value, dict) and isinstance(value.get("reference"), str)


def _walk(data) -> Iterator[dict]:
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if is_reference(item):
                yield item
            stack.extend(value for value in item.values() if isinstance(value, dict | list))
        elif isinstance(item, list):
            stack.extend(value for value in item if isinstance(value, dict | list))


def reference_strings(data) -> set[str]:
    """Every Reference.reference in a resource's JSON."""
    return {reference["reference"] for reference in _walk(data)}


def rewrite(data, replace: Callable[[dict], dict]):
    """A copy of resource JSON `data` with each Reference replaced by `replace(reference)`. References are found
    as `is_reference` says, and also those with no `reference` but an `identifier` (they may name a patient by NHS
    number): `replace` decides what each becomes."""
    if isinstance(data, list):
        return [rewrite(item, replace) for item in data]
    if not isinstance(data, dict):
        return data
    if is_reference(data) or _identifier_only(data):
        return replace(data)
    return {key: rewrite(value, replace) for key, value in data.items()}


def _identifier_only(value: dict) -> bool:
    identifier = value.get("identifier")
    return (
        "reference" not in value
        and isinstance(identifier, dict)
        and set(value) <= {"id", "extension", "identifier", "type", "display"}
        and "system" in identifier
        and "value" in identifier
    )
