"""What a resource is called here, and what a reference points at.

Every imported resource is known by "<ResourceType>/<id>" (its source_id, unique per sending organisation).
A Bundle entry without an id is known by its urn:uuid fullUrl instead, so resending the same bundle still
finds it; references resolve through the bundle's fullUrls first, then as "<Type>/<id>".
"""

import re

from .parse import Entry

MAX_KEY_LENGTH = 200
_TYPED_ID = re.compile(r"(?:^|/)([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})(?:/_history/[^/]+)?/?$")
_UUID_URN = "urn:uuid:"


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
