"""Reading what a partner sent (JSON or XML, one resource or a Bundle) into validated R4B resources.

A Bundle's entries are validated one by one rather than as one Bundle model, so that a batch can accept the
good entries and report the bad ones, each with an `expression` naming the element at fault.

What cannot be read at all (not JSON or XML, nested deeper than MAX_DEPTH) is `Unreadable` (400). A resource
that fails FHIR validation carries its issues (400). A valid resource whose content the record cannot hold is
`unprocessable` (422), with the element named: a string with a character that neither PostgreSQL nor FHIR XML
can carry (NUL, other C0 controls, lone surrogates, U+FFFE/U+FFFF), or a date and time so near year 1 or 9999
that converting it to UTC or local time overflows. Both checks walk the resource only when a cheap scan of the
body finds something that could be such a value, so a normal bundle pays nothing for them.

Refused too, each naming the element: a `modifierExtension` anywhere in an entry (`not-supported`, 422: a
modifier changes the meaning of what holds it, FHIR requires a system that does not understand one to reject
it, and carerecord understands none), and two entries of one Bundle with the same fullUrl (400: FHIR's bdl-7;
a reference to that fullUrl could land on either, perhaps another patient). A JSON entry keeps its resource as
sent (`Entry.raw`), which the import stores verbatim.

Refused whole before any R4 validation (`Unreadable`, one issue): FHIR STU3 or another release than R4, by its
Content-Type's `fhirVersion` or its shapes (versions.py); and a `document` Bundle whose first entry is not its
Composition (bdl-11).
"""

import datetime
import json
import re
import uuid
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from django.conf import settings
from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.resource import Resource
from lxml import etree
from pydantic import BaseModel, ValidationError

from . import versions
from .outcome import UNPRINTABLE, Issue, error, from_validation_error, printable

JSON = "application/fhir+json"
XML = "application/fhir+xml"
FHIR_NS = "http://hl7.org/fhir"
_NS = {"f": FHIR_NS}
# No entity expansion, no network, no huge trees: the body comes from outside.
_XML_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, remove_comments=True)
# Real resources nest about 15 levels (UK Core's examples: 9 XML elements); validation and serialisation recurse.
MAX_DEPTH = 64

# Characters XML 1.0 cannot carry, PostgreSQL refuses (NUL) or UTF-8 cannot encode (lone surrogates).
UNSTORABLE = UNPRINTABLE
# In a JSON body they arrive as \u escapes (raw control characters are already invalid JSON); U+FFFE/F raw too.
_MAYBE_UNSTORABLE = re.compile(rb"\\u00[01]|\\u[dD][89a-fA-F]|\\u[fF]{3}[eEfF]|\xef\xbf[\xbe\xbf]")
# Only a moment in year 1 or 9999 can overflow when moved by a time-zone offset.
_MAYBE_EXTREME_JSON = re.compile(rb'"(?:0001|9999)[-"]')
_MAYBE_EXTREME_XML = re.compile(rb"""value\s*=\s*["'](?:0001|9999)[-"']""")
_MOMENT = re.compile(
    r"(?P<year>\d{4})(?:-(?P<month>\d{2})(?:-(?P<day>\d{2})"
    r"(?:T(?P<hour>\d{2}):(?P<minute>\d{2})(?::(?P<second>\d{2})(?:\.\d+)?)?(?P<zone>Z|[+-]\d{2}:\d{2}))?)?)?"
)
_DAY = datetime.timedelta(days=1)
FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")


@dataclass
class Entry:
    """One resource as sent: alone, or a Bundle entry with its fullUrl and request."""

    index: int
    resource_type: str
    resource: Resource | None = None
    full_url: str = ""
    method: str = ""
    url: str = ""  # request.url: for a PUT, `Type/id` or a conditional update's `Type?identifier=...`
    if_none_exist: str = ""  # request.ifNoneExist (or the If-None-Exist header): a conditional create's search
    if_match: str = ""  # request.ifMatch (or the If-Match header on PUT): the version the update is made to
    expression: str = ""  # where it sits in what was sent, e.g. "Bundle.entry[3].resource"
    issues: list[Issue] = field(default_factory=list)
    # Valid FHIR, but content the record cannot hold (see the module docstring): 422 rather than 400.
    unprocessable: bool = False
    raw: dict | None = None  # the resource's JSON as sent (None for XML: its JSON is the parsed resource's)

    def as_sent(self) -> dict:
        """The resource as FHIR JSON, as the sender sent it (for XML, as the parsed resource). A PUT without an
        id in its body gets the URL's (the id it was sent under)."""
        if self.raw is None:
            return json.loads(self.resource.model_dump_json())
        if self.resource is not None and self.resource.id and self.raw.get("id") != self.resource.id:
            return {**self.raw, "id": self.resource.id}
        return self.raw


@dataclass
class Submission:
    bundle_type: str | None  # None for a single resource
    entries: list[Entry]
    identifier: str = ""  # Bundle.identifier.value: a message's id ($process-message)
    identifier_system: str = ""  # Bundle.identifier.system
    sent_id: str = ""  # Bundle.id. Both, with the identifier, name the Bundle in its Provenance (fhirapi.provenance)


class Unreadable(Exception):
    """The body is not a FHIR resource at all (not JSON/XML, no resource type, a malformed Bundle)."""

    def __init__(self, issues: list[Issue]):
        super().__init__("; ".join(issue.diagnostics for issue in issues))
        self.issues = issues


def is_xml(content_type: str | None, body: bytes) -> bool:
    if content_type and "xml" in content_type:
        return True
    if content_type and "json" in content_type:
        return False
    return body.lstrip()[:1] == b"<"


def read(body: bytes, content_type: str | None = None) -> Submission:
    """`content_type` is the whole header, parameters and all (a `fhirVersion` other than R4's is refused)."""
    sign = versions.content_type_sign(content_type)
    if sign is not None:
        raise Unreadable([versions.refusal([sign])])
    submission = _read_xml(body) if is_xml(content_type, body) else _read_json(body)
    _refuse_shared_full_urls(submission.entries)
    _refuse_document_without_composition(submission)
    return submission


def url_mismatch(submission: Submission, resource_type: str | None = None, resource_id: str | None = None):
    """What the URL says must match what was sent: a Bundle to the base (`resource_type` None), a resource of the
    URL's type elsewhere, with the URL's id (which it is given when it has none). An issue, or None."""
    if resource_type is None:
        if submission.bundle_type is None:
            return error("invalid", f"POST a single resource to {{base}}/{submission.entries[0].resource_type}.")
        return None
    if submission.bundle_type is not None or submission.entries[0].resource_type != resource_type:
        return error("invalid", f"The body must be a single {resource_type} resource.")
    resource = submission.entries[0].resource
    if resource_id is not None and resource is not None:
        if not FHIR_ID.fullmatch(resource_id):
            return error("invalid", "The id in the URL is not a FHIR id (1-64 of A-Z, a-z, 0-9, '-' and '.').", "id")
        if resource.id and resource.id != resource_id:
            return error("invalid", f"The resource id {resource.id!r} does not match the URL.", f"{resource_type}.id")
        resource.id = resource_id
    return None


def _refuse_stu3(signs) -> None:
    """STU3 (or another release) is refused whole, before R4 validation: one issue saying so (versions.py)."""
    if signs:
        raise Unreadable([versions.refusal(signs)])


def _refuse_document_without_composition(submission: Submission) -> None:
    """A document Bundle starts with its Composition (FHIR's bdl-11): without one it is no document, and taking
    its entries as a collection would file them without the document that gives them their context."""
    if submission.bundle_type != "document":
        return
    if not submission.entries:
        raise Unreadable(
            [error("required", "A document Bundle must start with its Composition (bdl-11).", "Bundle.entry")]
        )
    first = submission.entries[0].resource_type or "no resource"
    if first != "Composition":
        raise Unreadable(
            [
                error(
                    "invalid",
                    f"A document Bundle must start with its Composition (bdl-11): its first entry is {first}.",
                    "Bundle.entry[0]",
                )
            ]
        )


def _refuse_shared_full_urls(entries: list[Entry]) -> None:
    """Every entry of a Bundle whose fullUrl another entry has too is refused (bdl-7), each naming its own
    fullUrl: a reference to that fullUrl could mean either resource, so none of them is taken."""
    holders = {}
    for entry in entries:
        if entry.full_url:
            holders.setdefault(entry.full_url, []).append(entry)
    for full_url, shared in holders.items():
        if len(shared) < 2:
            continue
        indexes = ", ".join(str(entry.index) for entry in shared)
        for entry in shared:
            entry.issues.append(
                error(
                    "invalid",
                    f"Entries {indexes} share the fullUrl {full_url}: each entry's fullUrl must be unique in a Bundle "
                    "(bdl-7), or a reference to it could land on the wrong resource. None of them is imported.",
                    f"Bundle.entry[{entry.index}].fullUrl",
                )
            )
            entry.unprocessable = False


def resource_class(resource_type: str):
    """The R4B model for a resource type name, or None for anything that is not a resource."""
    if not isinstance(resource_type, str) or not resource_type[:1].isupper():
        return None
    try:
        model = get_fhir_model_class(resource_type)
    except ValueError:
        return None
    return model if model.has_resource_base() and model.get_resource_type() == resource_type else None


# JSON


def _too_deep() -> Unreadable:
    return Unreadable([error("structure", f"The body is nested more than {MAX_DEPTH} levels deep.")])


def _depth_exceeds(data, limit: int) -> bool:
    """Whether JSON `data` nests more than `limit` lists and objects deep (without recursing)."""
    stack = [(data, 1)]
    while stack:
        item, level = stack.pop()
        if level > limit:
            return True
        if isinstance(item, dict):
            stack.extend((value, level + 1) for value in item.values() if isinstance(value, dict | list))
        elif isinstance(item, list):
            stack.extend((value, level + 1) for value in item if isinstance(value, dict | list))
    return False


@dataclass(frozen=True)
class _Scan:
    """What the cheap scan of the body found worth a closer look."""

    unstorable: bool = False
    extreme: bool = False
    nulls: bool = False  # a null in the JSON: perhaps a repeated primitive with no value
    modifiers: bool = False  # "modifierExtension" appears somewhere

    def __bool__(self) -> bool:
        return self.unstorable or self.extreme


def _read_json(body: bytes) -> Submission:
    try:
        data = json.loads(body)
    except RecursionError as exc:
        raise _too_deep() from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise Unreadable([error("invalid", f"The body is not valid JSON: {exc}")]) from exc
    if _depth_exceeds(data, MAX_DEPTH):
        raise _too_deep()
    if not isinstance(data, dict) or not isinstance(data.get("resourceType"), str):
        raise Unreadable([error("required", "A FHIR resource needs a resourceType.", "resourceType")])
    _refuse_stu3(versions.json_signs(data, body))
    scan = _Scan(
        unstorable=bool(_MAYBE_UNSTORABLE.search(body)),
        extreme=bool(_MAYBE_EXTREME_JSON.search(body)),
        nulls=b"null" in body,
        modifiers=MODIFIER in body,
    )
    if data["resourceType"] != "Bundle":
        return Submission(None, [_json_entry(0, data, data["resourceType"], scan)])
    entries = data.get("entry") or []
    if not isinstance(entries, list) or not all(isinstance(entry, dict) for entry in entries):
        raise Unreadable([error("structure", "Bundle.entry must be a list of entries.", "Bundle.entry")])
    try:
        bundle = Bundle.model_validate({key: value for key, value in data.items() if key != "entry"})
    except ValidationError as exc:
        raise Unreadable(from_validation_error(exc, "Bundle")) from exc
    except (TypeError, AttributeError, ValueError, KeyError) as exc:
        raise Unreadable([error("invalid", f"The Bundle is not valid FHIR: {type(exc).__name__}.", "Bundle")]) from exc
    if scan.unstorable and UNSTORABLE.search(str(bundle.type)):
        raise Unreadable([error("invalid", "Bundle.type holds a character that cannot be stored.", "Bundle.type")])
    if scan.modifiers:
        outside = [path for path in _json_modifiers({k: v for k, v in data.items() if k != "entry"}, "Bundle")]
        if outside:
            raise Unreadable([not_understood(outside[0])])
    parsed = []
    for index, raw in enumerate(entries):
        expression = f"Bundle.entry[{index}]"
        problems = _entry_problems(raw, expression)
        if problems:
            parsed.append(Entry(index, "", expression=f"{expression}.resource", issues=problems))
            continue
        item = _json_entry(index, raw.get("resource"), f"{expression}.resource", scan)
        item.full_url = raw.get("fullUrl") or ""
        request = raw.get("request") or {}
        item.method, item.url = request.get("method") or "", request.get("url") or ""
        item.if_none_exist = request.get("ifNoneExist") or ""
        item.if_match = request.get("ifMatch") or ""
        if scan.modifiers:
            around = {key: value for key, value in raw.items() if key != "resource"}
            _refuse_modifiers(item, _json_modifiers(around, expression))
        parsed.append(item)
    identifier = bundle.identifier
    return Submission(
        bundle.type,
        parsed,
        identifier=(identifier and identifier.value) or "",
        identifier_system=(identifier and identifier.system) or "",
        sent_id=bundle.id or "",
    )


ENTRY_KEYS = {"id", "extension", "modifierExtension", "link", "fullUrl", "resource", "search", "request", "response"}
BAD_FULL_URL = "fullUrl is not a valid URI (after urn:uuid: comes a UUID)."
REQUEST_METHODS = {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"}


def _entry_problems(raw: dict, expression: str) -> list[Issue]:
    """An entry's own elements, checked by hand: validating 1,000 BundleEntry models costs more than it tells."""
    problems = [
        error("structure", f"Unknown element {key!r} in a Bundle entry", f"{expression}.{key}")
        for key in raw
        if key not in ENTRY_KEYS
    ]
    full_url = raw.get("fullUrl")
    if "fullUrl" in raw and not isinstance(full_url, str):
        problems.append(error("invalid", "fullUrl must be a string.", f"{expression}.fullUrl"))
    elif isinstance(full_url, str) and (UNSTORABLE.search(full_url) or not _valid_uuid_urn(full_url)):
        problems.append(error("invalid", BAD_FULL_URL, f"{expression}.fullUrl"))
    request = raw.get("request")
    if request is not None:
        if not isinstance(request, dict) or request.get("method") not in REQUEST_METHODS:
            problems.append(error("invalid", "request.method must be an HTTP verb.", f"{expression}.request.method"))
        elif not isinstance(request.get("url"), str) or not request["url"]:
            problems.append(error("required", "request.url is required.", f"{expression}.request.url"))
        elif UNSTORABLE.search(request["url"]):
            problems.append(error("invalid", "request.url is not a valid URI.", f"{expression}.request.url"))
        if_none_exist = request.get("ifNoneExist") if isinstance(request, dict) else None
        if if_none_exist is not None and (not isinstance(if_none_exist, str) or UNSTORABLE.search(if_none_exist)):
            where = f"{expression}.request.ifNoneExist"
            problems.append(error("invalid", "request.ifNoneExist must be a search string.", where))
        if isinstance(request, dict) and "ifMatch" in request:
            problem = if_match_problem(request["ifMatch"], request.get("method"), f"{expression}.request.ifMatch")
            problems.extend([problem] if problem else [])
    return problems


# If-Match: carerecord's version as its ETag gives it (W/"3"), or quoted, or bare.
_IF_MATCH = re.compile(r'W/"([0-9]{1,10})"|"([0-9]{1,10})"|([0-9]{1,10})')


def etag_version(text: str) -> int | None:
    """The version an If-Match names (`W/"3"`, `"3"` or `3`), or None if it names none."""
    match = _IF_MATCH.fullmatch(text.strip()) if isinstance(text, str) else None
    return int(next(group for group in match.groups() if group)) if match else None


def if_match_problem(value, method, expression: str) -> Issue | None:
    """An If-Match that is not a version, or on anything but an update, is refused (400), never ignored: the
    sender asked that its update apply only to that version."""
    if etag_version(value) is None:
        return error("invalid", 'If-Match names a version as its ETag does: W/"3" (or "3", or 3).', expression)
    if method != "PUT":
        return error("invalid", "If-Match applies to an update (PUT) of the resource it names.", expression)
    return None


def _valid_uuid_urn(full_url: str) -> bool:
    """A urn:uuid: fullUrl names its entry when it has no id, so it must be what FHIR says: a UUID."""
    if not full_url.startswith("urn:uuid:"):
        return True
    try:
        uuid.UUID(full_url.removeprefix("urn:uuid:"))
    except ValueError:
        return False
    return True


def _json_entry(index: int, data, expression: str, scan: _Scan = _Scan()) -> Entry:
    if data is None:
        return Entry(index, "", expression=expression)
    resource_type = data.get("resourceType") if isinstance(data, dict) else None
    model = resource_class(resource_type)
    # Not a resource type, the name is only reported (and audited): printable, so it can be stored.
    name = resource_type if model is not None else printable(resource_type) if isinstance(resource_type, str) else ""
    entry = Entry(index, name, expression=expression)
    if model is None:
        entry.issues.append(error("not-supported", f"Not a FHIR R4 resource type: {resource_type!r}", expression))
        return entry
    try:
        entry.resource = model.model_validate(data)
    except ValidationError as exc:
        entry.issues = from_validation_error(exc, resource_type if expression == resource_type else expression)
    except RecursionError:
        entry.issues = [error("structure", "The resource is nested too deeply to read.", expression)]
    except (TypeError, AttributeError, ValueError, KeyError) as exc:
        # Some of fhir.resources' own validators (url, for one) fail this way on a value of the wrong JSON type.
        entry.issues = [error("invalid", f"The resource is not valid FHIR: {type(exc).__name__}.", expression)]
    if entry.resource is not None and scan.nulls:
        drop_valueless_repeats(entry.resource)
    if entry.resource is not None and scan:
        _check_content(entry, _json_values(data, expression), scan)
    if entry.resource is not None:
        entry.raw = data
        if scan.modifiers:
            _refuse_modifiers(entry, _json_modifiers(data, expression))
    return entry


# Modifier extensions: none is understood here, so any one refuses its entry.

MODIFIER = b"modifierExtension"


def not_understood(path: str, url: str = "") -> Issue:
    named = f" ({url})" if url else ""
    return error(
        "not-supported",
        f"A modifier extension{named} is not understood here: it may change the meaning of the element that holds "
        "it, and FHIR requires what is not understood to be refused rather than read without it.",
        path,
    )


def _refuse_modifiers(entry: Entry, found) -> None:
    """Each modifier extension found is an issue of its entry, which is then refused: 422 when the resource is
    otherwise valid FHIR (it is what it says that cannot be taken), 400 when it was invalid anyway."""
    issues = [not_understood(path, url) for path, url in found]
    if issues:
        entry.issues.extend(issues)
        entry.unprocessable = entry.resource is not None


def _json_modifiers(data, prefix: str):
    """(FHIRPath, url) of every modifier extension in JSON `data`."""
    stack = [(prefix, data)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, dict):
            for key, value in reversed(item.items()):
                if key == "modifierExtension" and isinstance(value, list):
                    yield from (
                        (f"{path}.{key}[{n}]", printable(str(m.get("url", ""))) if isinstance(m, dict) else "")
                        for n, m in enumerate(value)
                    )
                elif key != "modifierExtension":
                    stack.append((f"{path}.{key}", value))
        elif isinstance(item, list):
            stack.extend((f"{path}[{index}]", value) for index, value in reversed(list(enumerate(item))))


def drop_valueless_repeats(resource) -> None:
    """A repeated primitive may have no value, only an extension (JSON: `"given": ["Ada", null]` with `_given`;
    XML: `<given><extension .../></given>`). It holds nothing the record shows, and every mapper expects the
    values of a list to be there ("Dr Paul" is `" ".join(prefix + given)`): such items are dropped, with their
    extensions, before anything reads the resource."""
    stack = [resource]
    while stack:
        model = stack.pop()
        for name in type(model).model_fields:
            value = getattr(model, name, None)
            if isinstance(value, BaseModel):
                stack.append(value)
            elif isinstance(value, list):
                if any(item is None for item in value):
                    kept = [index for index, item in enumerate(value) if item is not None]
                    extensions = getattr(model, f"{name}__ext", None)
                    setattr(model, name, [value[index] for index in kept] or None)
                    if isinstance(extensions, list) and len(extensions) == len(value):
                        setattr(model, f"{name}__ext", [extensions[index] for index in kept] or None)
                    value = getattr(model, name) or []
                stack.extend(item for item in value if isinstance(item, BaseModel))


def _json_values(data, prefix: str):
    """(FHIRPath, value) of every string in a JSON resource, in document order."""
    stack = [(prefix, data)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, dict):
            stack.extend((f"{path}.{key}", value) for key, value in reversed(item.items()) if key != "resourceType")
        elif isinstance(item, list):
            stack.extend((f"{path}[{index}]", value) for index, value in reversed(list(enumerate(item))))
        elif isinstance(item, str):
            yield path, item


def _check_content(entry: Entry, values, scan: _Scan) -> None:
    """Issues (422) for strings the record cannot store and moments that overflow, each naming its element."""
    for path, value in values:
        if scan.unstorable and UNSTORABLE.search(value):
            entry.issues.append(
                error(
                    "invalid",
                    "The text holds a character that cannot be stored: NUL, a control character or a lone surrogate.",
                    path,
                )
            )
        elif scan.extreme and value[:4] in ("0001", "9999") and overflows(value):
            entry.issues.append(
                error("invalid", f"The date {value!r} is out of range: it must fall between years 1 and 9999.", path)
            )
    entry.unprocessable = bool(entry.issues)


def overflows(value: str) -> bool:
    """Whether a FHIR date, dateTime or instant overflows once moved to UTC or local time, with a day to spare for
    the arithmetic the record does on dates (a date without a time is taken at local midnight, as the mappers do)."""
    match = _MOMENT.fullmatch(value)
    if match is None:
        return False
    parts = {name: int(number) for name, number in match.groupdict().items() if number and name != "zone"}
    zone = match["zone"]
    try:
        if zone is None:
            tzinfo = ZoneInfo(settings.TIME_ZONE)
        elif zone == "Z":
            tzinfo = datetime.UTC
        else:
            sign = -1 if zone[0] == "-" else 1
            offset = datetime.timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6]))
            tzinfo = datetime.timezone(sign * offset)
        moment = datetime.datetime(
            parts["year"],
            parts.get("month", 1),
            parts.get("day", 1),
            parts.get("hour", 0),
            parts.get("minute", 0),
            parts.get("second", 0),
            tzinfo=tzinfo,
        )
        for shifted in (moment - _DAY, moment + _DAY):
            shifted.astimezone(datetime.UTC)
            shifted.astimezone(ZoneInfo(settings.TIME_ZONE))
    except (OverflowError, ValueError):
        return True
    return False


# XML


def _read_xml(body: bytes) -> Submission:
    try:
        root = etree.fromstring(body, parser=_XML_PARSER)
    except etree.XMLSyntaxError as exc:
        raise Unreadable([error("invalid", f"The body is not well-formed XML: {exc}")]) from exc
    if root is None:
        raise Unreadable([error("invalid", "The body is not well-formed XML: it has no root element.")])
    if _xml_depth_exceeds(root, MAX_DEPTH):
        raise _too_deep()
    name = etree.QName(root)
    if name.namespace != FHIR_NS:
        raise Unreadable([error("structure", f"The root element is not in the FHIR namespace ({FHIR_NS}).")])
    _refuse_stu3(versions.xml_signs(root, body, FHIR_NS))
    scan = _Scan(extreme=bool(_MAYBE_EXTREME_XML.search(body)), modifiers=MODIFIER in body)
    if name.localname != "Bundle":
        return Submission(None, [_xml_entry(0, root, name.localname, scan)])
    bundle_type = _value(root, "f:type")
    if not bundle_type:
        raise Unreadable([error("required", "A Bundle needs a type.", "Bundle.type")])
    if scan.modifiers:
        outside = [
            path
            for child in root
            if _is_element(child) and etree.QName(child).localname != "entry"
            for path, _ in _xml_modifiers(child, f"Bundle.{etree.QName(child).localname}", own=True)
        ]
        if outside:
            raise Unreadable([not_understood(outside[0])])
    parsed = []
    for index, element in enumerate(root.findall("f:entry", _NS)):
        wrapper = element.find("f:resource", _NS)
        children = [child for child in wrapper if isinstance(child.tag, str)] if wrapper is not None else []
        expression = f"Bundle.entry[{index}].resource"
        item = _xml_entry(index, children[0], expression, scan) if children else Entry(index, "", expression=expression)
        item.full_url = _value(element, "f:fullUrl")
        if not _valid_uuid_urn(item.full_url):
            issue = error("invalid", BAD_FULL_URL, f"Bundle.entry[{index}].fullUrl")
            item.issues, item.resource, item.unprocessable = [issue], None, False
        item.method = _value(element, "f:request/f:method")
        item.url = _value(element, "f:request/f:url")
        item.if_none_exist = _value(element, "f:request/f:ifNoneExist")
        item.if_match = _value(element, "f:request/f:ifMatch")
        if item.if_match or element.find("f:request/f:ifMatch", _NS) is not None:
            problem = if_match_problem(item.if_match, item.method, f"Bundle.entry[{index}].request.ifMatch")
            if problem:
                item.issues, item.resource, item.unprocessable = [problem], None, False
        if scan.modifiers:
            around = [child for child in element if _is_element(child) and etree.QName(child).localname != "resource"]
            prefix = f"Bundle.entry[{index}]"
            _refuse_modifiers(
                item,
                [found for child in around for found in _xml_modifiers(child, _child_path(prefix, child), own=True)],
            )
        parsed.append(item)
    return Submission(
        bundle_type,
        parsed,
        identifier=_value(root, "f:identifier/f:value"),
        identifier_system=_value(root, "f:identifier/f:system"),
        sent_id=_value(root, "f:id"),
    )


def _is_element(node) -> bool:
    return isinstance(node.tag, str)


def _child_path(prefix: str, child) -> str:
    """`prefix.name`, with `[n]` when the parent holds more than one element of that name (as _xml_values)."""
    name = etree.QName(child).localname
    same = [sibling for sibling in child.getparent() if _is_element(sibling) and etree.QName(sibling).localname == name]
    return f"{prefix}.{name}" + (f"[{same.index(child)}]" if len(same) > 1 else "")


def _xml_modifiers(element, prefix: str, *, own: bool = False):
    """(FHIRPath, url) of every modifierExtension under `element` (named `prefix`; `own`: the element itself too)."""
    for found in element.iter(f"{{{FHIR_NS}}}modifierExtension"):
        if found is element and not own:
            continue
        chain = []
        node = found
        while node is not element:
            chain.append(node)
            node = node.getparent()
        path = prefix
        for node in reversed(chain):
            name = etree.QName(node).localname
            siblings = [s for s in node.getparent() if _is_element(s) and etree.QName(s).localname == name]
            index = siblings.index(node)
            path += f".{name}[{index}]" if name == "modifierExtension" or len(siblings) > 1 else f".{name}"
        if found is element:
            path = prefix
        yield path, printable(found.get("url", ""))


def _value(element, path: str) -> str:
    found = element.find(path, _NS)
    return found.get("value", "") if found is not None else ""


# An element with no value and nothing but extensions in it: a primitive without a value, perhaps repeated.
_VALUELESS = etree.XPath(
    "boolean(.//*[not(@value)][f:extension][not(*[not(self::f:extension)])]"
    "[local-name() != 'extension' and local-name() != 'modifierExtension'])",
    namespaces=_NS,
)


def _xml_depth_exceeds(root, limit: int) -> bool:
    depth = 0
    for event, _ in etree.iterwalk(root, events=("start", "end")):
        depth += 1 if event == "start" else -1
        if depth > limit:
            return True
    return False


def _xml_values(element, prefix: str):
    """(FHIRPath, value) of every value attribute under a resource element: Condition.onsetDateTime."""
    stack = [(prefix, element)]
    while stack:
        path, item = stack.pop()
        value = item.get("value")
        if value is not None and item is not element:
            yield path, value
        children = [child for child in item if isinstance(child.tag, str)]
        counts, seen, named = {}, {}, []
        for child in children:
            counts[etree.QName(child).localname] = counts.get(etree.QName(child).localname, 0) + 1
        for child in children:
            name = etree.QName(child).localname
            index = seen.get(name, 0)
            seen[name] = index + 1
            named.append((f"{path}.{name}" + (f"[{index}]" if counts[name] > 1 else ""), child))
        stack.extend(reversed(named))


def _xml_entry(index: int, element, expression: str, scan: _Scan = _Scan()) -> Entry:
    resource_type = etree.QName(element).localname
    entry = Entry(index, resource_type, expression=expression)
    model = resource_class(resource_type)
    if model is None:
        entry.issues.append(error("not-supported", f"Not a FHIR R4 resource type: {resource_type!r}", expression))
        return entry
    try:
        entry.resource = model.model_validate_xml(etree.tostring(element), xmlparser=_XML_PARSER)
    except ValidationError as exc:
        # Nested models are built (and fail) as the XML is read: the error's title names the innermost one.
        prefix = expression if exc.title == resource_type else f"{expression}.descendants().ofType({exc.title})"
        entry.issues = from_validation_error(exc, prefix)
    except KeyError as exc:
        entry.issues = [error("structure", f"Unknown element {exc.args[0]!r} in {resource_type}", expression)]
    except (ValueError, TypeError, AttributeError) as exc:
        entry.issues = [error("invalid", str(exc), expression)]
    except RecursionError:
        entry.issues = [error("structure", "The resource is nested too deeply to read.", expression)]
    if entry.resource is not None and _VALUELESS(element):
        drop_valueless_repeats(entry.resource)
    if entry.resource is not None and scan:
        _check_content(entry, _xml_values(element, expression), scan)
    if entry.resource is not None and scan.modifiers:
        _refuse_modifiers(entry, _xml_modifiers(element, expression))
    return entry
