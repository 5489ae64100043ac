"""Reading what a partner sent (JSON or XML, one resource or a Bundle) into validated R4B resources.

A Bundle's entries are validated one by one rather than as one Bundle model, so that a batch can accept the
good entries and report the bad ones, each with an `expression` naming the element at fault.
"""

import json
from dataclasses import dataclass, field

from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.resource import Resource
from lxml import etree
from pydantic import ValidationError

from .outcome import Issue, error, from_validation_error

JSON = "application/fhir+json"
XML = "application/fhir+xml"
FHIR_NS = "http://hl7.org/fhir"
_NS = {"f": FHIR_NS}
# No entity expansion, no network, no huge trees: the body comes from outside.
_XML_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, remove_comments=True)


@dataclass
class Entry:
    """One resource as sent: alone, or a Bundle entry with its fullUrl and request."""

    index: int
    resource_type: str
    resource: Resource | None = None
    full_url: str = ""
    method: str = ""
    url: str = ""
    expression: str = ""  # where it sits in what was sent, e.g. "Bundle.entry[3].resource"
    issues: list[Issue] = field(default_factory=list)


@dataclass
class Submission:
    bundle_type: str | None  # None for a single resource
    entries: list[Entry]


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
    return _read_xml(body) if is_xml(content_type, body) else _read_json(body)


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


def _read_json(body: bytes) -> Submission:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise Unreadable([error("invalid", f"The body is not valid JSON: {exc}")]) from exc
    if not isinstance(data, dict) or not isinstance(data.get("resourceType"), str):
        raise Unreadable([error("required", "A FHIR resource needs a resourceType.", "resourceType")])
    if data["resourceType"] != "Bundle":
        return Submission(None, [_json_entry(0, data, data["resourceType"])])
    entries = data.get("entry") or []
    if not isinstance(entries, list) or not all(isinstance(entry, dict) for entry in entries):
        raise Unreadable([error("structure", "Bundle.entry must be a list of entries.", "Bundle.entry")])
    try:
        bundle = Bundle.model_validate({key: value for key, value in data.items() if key != "entry"})
    except ValidationError as exc:
        raise Unreadable(from_validation_error(exc, "Bundle")) from exc
    parsed = []
    for index, raw in enumerate(entries):
        expression = f"Bundle.entry[{index}]"
        problems = _entry_problems(raw, expression)
        if problems:
            parsed.append(Entry(index, "", expression=f"{expression}.resource", issues=problems))
            continue
        item = _json_entry(index, raw.get("resource"), f"{expression}.resource")
        item.full_url = raw.get("fullUrl") or ""
        request = raw.get("request") or {}
        item.method, item.url = request.get("method") or "", request.get("url") or ""
        parsed.append(item)
    return Submission(bundle.type, parsed)


ENTRY_KEYS = {"id", "extension", "modifierExtension", "link", "fullUrl", "resource", "search", "request", "response"}
REQUEST_METHODS = {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"}


def _entry_problems(raw: dict, expression: str) -> list[Issue]:
    """An entry's own elements, checked by hand: validating 1,000 BundleEntry models costs more than it tells."""
    problems = [
        error("structure", f"Unknown element {key!r} in a Bundle entry", f"{expression}.{key}")
        for key in raw
        if key not in ENTRY_KEYS
    ]
    if "fullUrl" in raw and not isinstance(raw["fullUrl"], str):
        problems.append(error("invalid", "fullUrl must be a string.", f"{expression}.fullUrl"))
    request = raw.get("request")
    if request is not None:
        if not isinstance(request, dict) or request.get("method") not in REQUEST_METHODS:
            problems.append(error("invalid", "request.method must be an HTTP verb.", f"{expression}.request.method"))
        elif not isinstance(request.get("url"), str) or not request["url"]:
            problems.append(error("required", "request.url is required.", f"{expression}.request.url"))
    return problems


def _json_entry(index: int, data, expression: str) -> Entry:
    if data is None:
        return Entry(index, "", expression=expression)
    resource_type = data.get("resourceType") if isinstance(data, dict) else None
    entry = Entry(index, resource_type or "", expression=expression)
    model = resource_class(resource_type)
    if model is None:
        entry.issues.append(error("not-supported", f"Not a FHIR R4 resource type: {resource_type!r}", expression))
        return entry
    try:
        entry.resource = model.model_validate(data)
    except ValidationError as exc:
        entry.issues = from_validation_error(exc, resource_type if expression == resource_type else expression)
    return entry


# XML


def _read_xml(body: bytes) -> Submission:
    try:
        root = etree.fromstring(body, parser=_XML_PARSER)
    except etree.XMLSyntaxError as exc:
        raise Unreadable([error("invalid", f"The body is not well-formed XML: {exc}")]) from exc
    name = etree.QName(root)
    if name.namespace != FHIR_NS:
        raise Unreadable([error("structure", f"The root element is not in the FHIR namespace ({FHIR_NS}).")])
    if name.localname != "Bundle":
        return Submission(None, [_xml_entry(0, root, name.localname)])
    bundle_type = _value(root, "f:type")
    if not bundle_type:
        raise Unreadable([error("required", "A Bundle needs a type.", "Bundle.type")])
    parsed = []
    for index, element in enumerate(root.findall("f:entry", _NS)):
        wrapper = element.find("f:resource", _NS)
        children = [child for child in wrapper if isinstance(child.tag, str)] if wrapper is not None else []
        expression = f"Bundle.entry[{index}].resource"
        item = _xml_entry(index, children[0], expression) if children else Entry(index, "", expression=expression)
        item.full_url = _value(element, "f:fullUrl")
        item.method = _value(element, "f:request/f:method")
        item.url = _value(element, "f:request/f:url")
        parsed.append(item)
    return Submission(bundle_type, parsed)


def _value(element, path: str) -> str:
    found = element.find(path, _NS)
    return found.get("value", "") if found is not None else ""


def _xml_entry(index: int, element, expression: str) -> Entry:
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
    except (ValueError, TypeError) as exc:
        entry.issues = [error("invalid", str(exc), expression)]
    return entry
