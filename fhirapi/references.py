"""What a resource is called here, and what a reference points at.

Every imported resource is known by "<ResourceType>/<id>" (its source_id, unique per sending organisation).
A Bundle entry without an id is known by its urn:uuid fullUrl instead, so resending the same bundle still
finds it; references resolve through the bundle's fullUrls first, then as "<Type>/<id>".

Two other kinds of reference are read here (Context resolves them): a conditional reference
(`Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|9991234567`, FHIR's search URI in place of an id; only the
`identifier` parameter is understood, `Conditional`), and a local one (`#p1`, a resource contained in the one that
refers to it).

On the way out, a stored resource's references are rewritten (`rewrite`) by the read API's resolver: to
carerecord's ids where carerecord holds what they point at, else kept as what they say without the sender's
address (read.py, `Resolver`).
"""

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import unquote

from django.conf import settings

from patients.nhs_numbers import normalise

from .outcome import UNPRINTABLE, Issue, error
from .parse import Entry
from .systems import NHS_NUMBER, ODS_CODE

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


# Conditional references and searches (FHIR http.html#ccreate, #cond-update; bundle transaction rules)

_CONDITIONAL = re.compile(r"([A-Z][A-Za-z]+)\?(.*)", re.DOTALL)
_TYPE_NAME = re.compile(r"[A-Z][A-Za-z]{1,63}")
# Parameters that shape what a search returns, not what it matches: irrelevant to which resource is meant.
RESULT_PARAMETERS = {"_format", "_pretty", "_summary", "_elements", "_count", "_sort", "_total", "_include"}
# Identifiers that name one thing across the shared record, not one sender's resource.
NATIONAL = {("Patient", NHS_NUMBER), ("Organization", ODS_CODE)}


class BadCondition(Exception):
    """A search carerecord cannot run: its issue (without an expression; the caller knows where it was)."""

    def __init__(self, code: str, diagnostics: str):
        super().__init__(diagnostics)
        self.code, self.diagnostics = code, diagnostics

    def issue(self, expression: str) -> Issue:
        return error(self.code, self.diagnostics, expression)


@dataclass(frozen=True)
class Conditional:
    """`<Type>?identifier=<system>|<value>`: the resources of a type carrying an identifier (FHIR token search:
    `system|value`; `value` alone in any system; `|value` with no system; `system|` any value in the system)."""

    resource_type: str
    system: str | None  # None: any system
    value: str | None  # None: any value

    @property
    def text(self) -> str:
        """A canonical form: also the key a Patient named by NHS number is known by in one submission."""
        token = (self.value or "") if self.system is None else f"{self.system}|{self.value or ''}"
        return f"{self.resource_type}?identifier={token}"

    @property
    def national(self) -> bool:
        """An NHS number or ODS code: it names one patient or organisation, whoever sent what."""
        return (self.resource_type, self.system) in NATIONAL and bool(self.value)

    @property
    def nhs_number(self) -> str:
        return normalise(self.value) if self.national and self.resource_type == "Patient" else ""

    @property
    def ods_code(self) -> str:
        return self.value.strip().upper() if self.national and self.resource_type == "Organization" else ""

    def matches(self, identifier) -> bool:
        """Whether an identifier (JSON or an R4B Identifier) is one this search finds."""
        get = identifier.get if isinstance(identifier, dict) else lambda name: getattr(identifier, name, None)
        system, value = get("system"), get("value")
        if not isinstance(value, str) or (system is not None and not isinstance(system, str)):
            return False
        if self.system is not None and (system or "") != self.system:
            return False
        if self.value is None:
            return True
        if self.national:
            return _national(self, value)
        return value == self.value


def _national(condition: Conditional, value: str) -> bool:
    if condition.resource_type == "Patient":
        return normalise(value) == condition.nhs_number
    return value.strip().upper() == condition.ods_code


def is_conditional(text) -> bool:
    """A reference that is a search URI (`Type?...`), not an id: relative to the base, starting with a type."""
    return isinstance(text, str) and _CONDITIONAL.fullmatch(text) is not None


def is_local(text) -> bool:
    """A reference to a contained resource (`#p1`); "#" alone is the container itself."""
    return isinstance(text, str) and text.startswith("#") and len(text) > 1


def conditional(text: str, resource_type: str | None = None) -> Conditional:
    """The search `text` asks for: `Type?query` (relative to the base, or a full URL ending in the type); with
    `resource_type` given, the query alone will do (ifNoneExist gives only what follows the `?`), and a search for
    another type is refused. BadCondition for what carerecord does not search on: only `identifier`, once."""
    if "?" in text:
        before, _, query = text.partition("?")
        kind = before.rstrip("/").rsplit("/", 1)[-1] or resource_type
    elif resource_type is not None:
        kind, query = resource_type, text
    else:
        kind, query = None, ""
    if not isinstance(kind, str) or not _TYPE_NAME.fullmatch(kind):
        raise BadCondition("invalid", f"{_said(text)} is not a search: write <Type>?identifier=system|value.")
    if resource_type is not None and kind != resource_type:
        raise BadCondition("invalid", f"The search {_said(text)} is for {kind}, but the resource is a {resource_type}.")
    pairs = (part.partition("=") for part in query.split("&") if part)
    parameters = [(unquote(name), unquote(value)) for name, _, value in pairs]
    filters = [(name, value) for name, value in parameters if name not in RESULT_PARAMETERS]
    unsupported = sorted({name for name, _ in filters if name != "identifier"})
    if unsupported:
        raise BadCondition(
            "not-supported",
            f"Searching {kind} by {', '.join(unsupported)} is not supported here: a conditional reference, "
            "create or update names a resource by identifier only (identifier=system|value).",
        )
    if len(filters) != 1:
        many = "more than one identifier" if filters else "no identifier"
        raise BadCondition(
            "not-supported" if filters else "required",
            f"The search {_said(text)} gives {many}: name the resource by one identifier=system|value.",
        )
    token = filters[0][1]
    if UNPRINTABLE.search(token):
        raise BadCondition("invalid", f"The search {_said(text)} holds a character no identifier can.")
    return Conditional(kind, *_token(token, text))


def _said(text: str) -> str:
    """What was sent, quoted (and cut short) in a diagnostic."""
    return repr(text if len(text) <= 200 else f"{text[:200]}…")


_UNESCAPED_COMMA = re.compile(r"(?<!\\),")
_UNESCAPED_BAR = re.compile(r"(?<!\\)\|")


def _token(token: str, text: str) -> tuple[str | None, str | None]:
    """A token search's (system, value); FHIR escapes a literal `,` or `|` in either with a backslash."""
    if _UNESCAPED_COMMA.search(token):
        raise BadCondition("not-supported", f"{_said(text)} names several identifiers (a comma): name exactly one.")
    parts = _UNESCAPED_BAR.split(token, maxsplit=1)
    system, value = (None, parts[0]) if len(parts) == 1 else (_unescape(parts[0]), parts[1])
    if not value and not system:
        raise BadCondition("required", f"{_said(text)} names no identifier: give identifier=system|value.")
    return system, _unescape(value) or None


def _unescape(text: str) -> str:
    return re.sub(r"\\([,|$\\])", r"\1", text)


@lru_cache(maxsize=4096)
def conditional_nhs_number(text) -> str:
    """The NHS number a conditional reference names a patient by (`Patient?identifier=<NHS number system>|n`)."""
    if not is_conditional(text):
        return ""
    try:
        return conditional(text).nhs_number
    except BadCondition:
        return ""


def conditional_identifier(text) -> dict | None:
    """The identifier a conditional reference (or key) names, as FHIR JSON; None if it names none exactly."""
    if not is_conditional(text):
        return None
    try:
        found = conditional(text)
    except BadCondition:
        return None
    if found.value is None:
        return None
    return {"system": found.system, "value": found.value} if found.system else {"value": found.value}


def identifiers_of(data) -> list:
    """A resource's identifiers (JSON or an R4B model): a list for most types, one for a few."""
    found = data.get("identifier") if isinstance(data, dict) else getattr(data, "identifier", None)
    if found is None:
        return []
    return found if isinstance(found, list) else [found]


def special_references(data, prefix: str) -> Iterator[tuple[str, str]]:
    """(FHIRPath of the Reference, its text) of each conditional or local reference in resource JSON `data`."""
    stack = [(prefix, data)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, dict):
            if is_reference(item) and (is_conditional(item["reference"]) or is_local(item["reference"])):
                yield path, item["reference"]
            children = reversed(item.items())
            stack.extend((f"{path}.{key}", value) for key, value in children if isinstance(value, dict | list))
        elif isinstance(item, list):
            stack.extend((f"{path}[{index}]", value) for index, value in reversed(list(enumerate(item))))


def has_special(texts) -> bool:
    return any(is_conditional(text) or is_local(text) for text in texts)
