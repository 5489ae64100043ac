"""Property-based fuzzing (Hypothesis): whatever a partner system or a browser sends, the answer is never a 5xx.

Every FHIR endpoint (POST /fhir/ bundles, $process-message messages, POST and PUT of single resources in JSON
and XML, conditional creates and updates, search, read, $everything, POST /Patient/_search) and every form (the
public opt-out form, patient search, break glass, a professional recording an objection) gets inputs made three
ways: the vendored UK Core examples with a few elements replaced, removed or nested (so that most inputs get past
parsing into mapping and the database), arbitrary JSON, and raw bytes. Replacement values lean on what broke
before: NUL and lone surrogates in strings, dates whose conversion to UTC overflows, non-ASCII digits, numbers past
32 bits, deep nesting, conditional and local references.

Bounded: the `ci` profile (max_examples 200 a test) is what `make test` runs on PostgreSQL, which refuses more
than SQLite (NUL in text, timestamps before year 1), so the SQLite run skips these tests. `make fuzz` runs the
`fuzz` profile (FUZZ_EXAMPLES, 5,000 a test, random). HYPOTHESIS_PROFILE picks a profile; `dev` (25) is quick
for local edits.
Each example runs inside a savepoint that is rolled back, so every example starts from the same data.
"""

import copy
import functools
import json
import os
import re
import uuid
from urllib.parse import quote, quote_from_bytes

import pytest
from django.db import connection, transaction
from django.test import Client
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from lxml import etree

from directory.actions import create_api_token
from fhirapi.ingest import ingest
from fhirapi.mapping import HANDLED_TYPES
from fhirapi.parse import read as parse
from patients import nhs_numbers
from tests import factories

_COMMON = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
    "database": None,
    "print_blob": True,
}
settings.register_profile("ci", max_examples=200, derandomize=True, **_COMMON)
settings.register_profile("fuzz", max_examples=int(os.environ.get("FUZZ_EXAMPLES") or 5000), **_COMMON)
settings.register_profile("dev", max_examples=25, **_COMMON)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

pytestmark = [
    pytest.mark.fuzz,
    pytest.mark.django_db,
    pytest.mark.skipif(
        not os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")),
        reason="fuzzing runs on the PostgreSQL run only (it refuses what SQLite accepts); `make fuzz` runs it longer",
    ),
]

EXAMPLES = os.path.join(os.path.dirname(__file__), "fixtures", "fhir", "ukcore")
PATIENT_EXAMPLE = "UKCore-Patient-RichardSmith-Example.xml"
FHIR_JSON, FHIR_XML = "application/fhir+json", "application/fhir+xml"


def _example_type(name: str) -> str:
    return etree.QName(etree.parse(os.path.join(EXAMPLES, name)).getroot()).localname


MAPPED = sorted(name for name in os.listdir(EXAMPLES) if name.endswith(".xml") and _example_type(name) in HANDLED_TYPES)


@functools.cache
def example_xml(name: str) -> bytes:
    with open(os.path.join(EXAMPLES, name), "rb") as file:
        return file.read()


@functools.cache
def example_json(name: str) -> dict:
    """The example as FHIR JSON (read from its XML by the same parser the API uses)."""
    [entry] = parse(example_xml(name), FHIR_XML).entries
    return json.loads(entry.resource.model_dump_json())


# --- values ---------------------------------------------------------------------------------------------------------

NASTY_STRINGS = [
    "",
    " ",
    "\x00",
    "Test\x00person",
    "\ud800",
    "a\udfffb",
    "²",
    "٩٩٩٠٠٠٠٠١٨",
    "９９９０００００１８",
    "9990000018",
    "999 000 0018",
    "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59-14:00",
    "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59Z",
    "0001-01-01",
    "9999-12-31",
    "0001",
    "9999-12",
    "2020-02-30",
    "2024-13-01T00:00:00Z",
    "2020-01-01T25:00:00Z",
    "Patient/UKCore-Patient-RichardSmith-Example",
    "Patient/",
    # Conditional and local references (issue 13): Richard Smith's NHS number resolves, so the import goes on.
    "Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|9912003888",
    "Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|9990000018",
    "Patient?identifier=%00|x",
    "Patient?identifier=|",
    "Patient?name=x&identifier=a|b,c|d",
    "Organization?identifier=https://fhir.nhs.uk/Id/ods-organization-code|X26",
    "#p1",
    "#",
    "urn:uuid:00000000-0000-0000-0000-000000000000",
    "https://fhir.nhs.uk/Id/nhs-number",
    "https://fhir.nhs.uk/Id/ods-organization-code",
    "http://snomed.info/sct",
    "x" * 5000,
    "ß" * 300,
    "<div xmlns='http://www.w3.org/1999/xhtml'>&lt;<b>x</b></div>",
    "<div>",
    "' OR 1=1 --",
    "%00",
    "\u202e",
    "😀",
    "-0",
    "1e309",
    "NaN",
]
NHS_NUMBERS = ["9990000018", "999 000 0018", "٩٩٩٠٠٠٠٠١٨", "9990000019", "99900000", "\x00", ""]
NASTY_NUMBERS = [0, -1, 1, 2**31 - 1, 2**31, -(2**31) - 1, 2**63, 10**30, 1e308, -1e308, 1.5, 1e-320]

text = st.one_of(st.text(max_size=30), st.sampled_from(NASTY_STRINGS))


def _surrogates(value: str) -> bool:
    return any(0xD800 <= ord(char) <= 0xDFFF for char in value)


# What a URL or a form can carry: any text but lone surrogates (UTF-8 cannot encode them).
form_text = st.one_of(st.text(max_size=30), st.sampled_from([s for s in NASTY_STRINGS if not _surrogates(s)]))
numbers = st.one_of(st.integers(), st.floats(allow_nan=True, allow_infinity=True), st.sampled_from(NASTY_NUMBERS))
leaves = st.one_of(st.none(), st.booleans(), numbers, text)
KEYS = [
    "resourceType",
    "id",
    "reference",
    "system",
    "value",
    "code",
    "coding",
    "text",
    "extension",
    "url",
    "start",
    "end",
    "identifier",
    "subject",
    "patient",
    "status",
    "valueQuantity",
    "effectiveDateTime",
    "meta",
    "lastUpdated",
    "entry",
    "resource",
]
json_values = st.recursive(
    leaves,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=8)), children, max_size=4),
    ),
    max_leaves=12,
)


# Deep nesting is written into the body as text (json.dumps itself refuses a few thousand levels): the value
# holds a marker that `_body` expands.
DEEP = re.compile(rb'"\\u00a7deep-(\d+)-(list|extension)\\u00a7"')
deep_values = st.builds(
    "\u00a7deep-{}-{}\u00a7".format, st.integers(min_value=50, max_value=3000), st.sampled_from(["list", "extension"])
)


def _expand(match) -> bytes:
    depth, kind = int(match[1]), match[2]
    if kind == b"list":
        return b"[" * depth + b'"x"' + b"]" * depth
    return b'{"url": "http://example.org", "extension": [' * depth + b'{"url": "x"}' + b"]}" * depth


replacements = st.one_of(leaves, leaves, json_values, deep_values)


def _paths(value):
    """Every element's path in a JSON value (dict keys and list indexes)."""
    stack = [((), value)]
    while stack:
        path, item = stack.pop()
        yield path
        if isinstance(item, dict):
            stack.extend(((*path, key), child) for key, child in item.items())
        elif isinstance(item, list):
            stack.extend(((*path, index), child) for index, child in enumerate(item))


def _mutate(document, path, action, value, key):
    """Replace, delete, duplicate or add at `path`, if it is still there after earlier mutations."""
    parent, target = None, document
    try:
        for part in path:
            parent, target = target, target[part]
    except (KeyError, IndexError, TypeError):
        return document
    if action == "add" and isinstance(target, dict):
        target[key] = value
    elif action == "add" and isinstance(target, list):
        target.append(value)
    elif not path:
        return value if action == "replace" else document
    elif action == "replace":
        parent[path[-1]] = value
    elif action == "delete":
        del parent[path[-1]]
    elif action == "duplicate" and isinstance(parent, list):
        parent.append(copy.deepcopy(target))
    elif action == "duplicate":
        parent[path[-1]] = [target, copy.deepcopy(target)]
    return document


def _at(document, path):
    for part in path:
        document = document[part]
    return document


# A value of the same JSON type as the one it replaces: valid FHIR more often, so the import gets further.
SAME_TYPE = {
    str: st.one_of(
        st.sampled_from(NASTY_STRINGS),
        st.text(st.characters(exclude_categories=("Cs", "Cc", "Zs", "Zl", "Zp")), min_size=1, max_size=30),
        text,
    ),
    bool: st.booleans(),
    int: st.one_of(st.integers(), st.sampled_from([n for n in NASTY_NUMBERS if isinstance(n, int)])),
    float: numbers,
}


@st.composite
def mutated(draw, names=MAPPED):
    """A UK Core example with one to four elements changed: mostly a value of the same type, sometimes anything."""
    document = copy.deepcopy(example_json(draw(st.sampled_from(names))))
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        if not isinstance(document, dict):
            break
        action = draw(st.sampled_from(["same-type", "same-type", "same-type", "replace", "delete", "duplicate", "add"]))
        key = draw(st.one_of(st.sampled_from(KEYS), st.text(max_size=8)))
        if action == "same-type":
            leaves = [
                p for p in _paths(document) if p and p[-1] != "resourceType" and type(_at(document, p)) in SAME_TYPE
            ]
            if not leaves:
                continue
            path = draw(st.sampled_from(leaves))
            value, action = draw(SAME_TYPE[type(_at(document, path))]), "replace"
        else:
            path, value = draw(st.sampled_from(list(_paths(document)))), draw(replacements)
        document = _mutate(document, path, action, value, key)
    return document


# What a conditional create or update searches on (ifNoneExist, If-None-Exist, PUT [base]/Type?...).
CONDITIONS = [
    "identifier=https://fhir.nhs.uk/Id/nhs-number|9912003888",
    "Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|9912003888",
    "identifier=9912003888",
    "identifier=https://fhir.nhs.uk/Id/nhs-number|",
    "identifier=%ZZ|%00",
    "name=Smith",
    "identifier=a|b&identifier=c|d",
    "Condition?identifier=x|y",
    "",
]
conditions = st.one_of(st.sampled_from(CONDITIONS), form_text)


@st.composite
def bundles(draw):
    kind = draw(st.one_of(st.sampled_from(["transaction", "batch", "collection", "document", "message"]), text))
    entries = []
    for _ in range(draw(st.integers(min_value=0, max_value=4))):
        resource = draw(st.one_of(mutated(), st.builds(example_json, st.sampled_from(MAPPED)), json_values))
        entry = {"resource": resource}
        if draw(st.booleans()):
            entry["fullUrl"] = draw(st.one_of(st.just(f"urn:uuid:{uuid.uuid4()}"), text))
        if draw(st.booleans()):
            method = draw(st.one_of(st.sampled_from(["POST", "PUT", "GET", "DELETE"]), text))
            url = resource.get("resourceType", "x") if isinstance(resource, dict) else "x"
            entry["request"] = {"method": method, "url": draw(st.one_of(st.just(str(url)), text))}
            if draw(st.integers(0, 3)) == 0:  # a conditional create or update
                condition = draw(conditions)
                entry["request"]["ifNoneExist" if draw(st.booleans()) else "url"] = condition
        if draw(st.integers(0, 9)) == 0:
            entry = _mutate(entry, (), "add", draw(json_values), draw(st.sampled_from(KEYS)))
        entries.append(entry)
    return {"resourceType": "Bundle", "type": kind, "entry": entries}


@st.composite
def mutated_xml(draw):
    """A UK Core example's XML with attribute values replaced, elements removed or repeated."""
    root = etree.fromstring(example_xml(draw(st.sampled_from(MAPPED))))
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        elements = [element for element in root.iter() if isinstance(element.tag, str)]
        element = draw(st.sampled_from(elements))
        action = draw(st.sampled_from(["value", "value", "remove", "repeat", "nest"]))
        if action == "value" and "value" in element.attrib:
            element.set("value", draw(st.text(max_size=30).filter(_xml_safe) | st.sampled_from(XML_SAFE_NASTY)))
        elif action == "remove" and element.getparent() is not None:
            element.getparent().remove(element)
        elif action == "repeat" and element.getparent() is not None:
            element.addnext(copy.deepcopy(element))
        elif action == "nest":
            element.append(copy.deepcopy(element))
    return etree.tostring(root)


def _xml_safe(value: str) -> bool:
    try:
        etree.Element("x").set("value", value)
    except ValueError:
        return False
    return True


XML_SAFE_NASTY = [s for s in NASTY_STRINGS if _xml_safe(s)]

# --- the world the examples land in ---------------------------------------------------------------------------------


@pytest.fixture
def world(organisation, other_organisation, patient, clinician, clinician_other_org):
    """A sending organisation with a token and Richard Smith already sent (so mutated examples resolve their
    subject and reach the database), a reader with a token, and a second patient with a full record."""
    [outcome] = ingest(parse(example_xml(PATIENT_EXAMPLE), FHIR_XML), organisation=other_organisation).outcomes
    assert outcome.status == "created", outcome.issues
    _, sender = create_api_token(by=None, name="fuzz feed", organisation=other_organisation)
    _, reader = create_api_token(by=None, name="fuzz reader", user=clinician)
    for entry_factory in factories.ENTRY_FACTORIES.values():
        entry_factory(patient=patient, source_organisation=other_organisation)
    return {"sender": sender, "reader": reader, "patient": patient}


def isolated(send):
    """Run one request in a savepoint rolled back afterwards; the answer must not be a server error."""
    with transaction.atomic():
        response = send()
        transaction.set_rollback(True)
    event(f"status {response.status_code}")
    assert response.status_code < 500, (response.status_code, response.content[:2000])
    return response


def _kind(resource) -> str:
    """The resource type to put in the URL: the body's own, when it has one."""
    kind = resource.get("resourceType") if isinstance(resource, dict) else None
    return quote(str(kind), safe="") if kind else "Patient"


def _body(value) -> bytes:
    return DEEP.sub(_expand, json.dumps(value, allow_nan=True).encode())


content_types = st.sampled_from([FHIR_JSON, "application/json", FHIR_XML, "application/xml", "text/plain", ""])


@pytest.fixture
def fhir_client():
    return Client(raise_request_exception=True)


def _auth(token):
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


# --- FHIR: sending in -----------------------------------------------------------------------------------------------


MESSAGE_HEADER = {
    "resourceType": "MessageHeader",
    "id": "fuzz-header",
    "eventCoding": {"system": "https://fhir.nhs.uk/CodeSystem/message-event", "code": "unsolicited-observations"},
    "source": {"name": "fuzz", "endpoint": "https://fuzz.example/fhir/$process-message"},
}


@given(bundle=bundles(), xml_request=st.booleans(), as_message=st.booleans(), header=st.one_of(st.none(), json_values))
def test_fuzz_post_bundle(world, fhir_client, bundle, xml_request, as_message, header):
    """Half of them as a FHIR message to $process-message: a MessageHeader first (now and then replaced by anything)."""
    accept = {"HTTP_ACCEPT": FHIR_XML} if xml_request else {}
    headers = {**_auth(world["sender"]), **accept}
    path = "/fhir/"
    if as_message:
        path = "/fhir/$process-message"
        first = {"fullUrl": f"urn:uuid:{uuid.uuid4()}", "resource": MESSAGE_HEADER if header is None else header}
        bundle = {**bundle, "type": "message", "identifier": {"value": str(uuid.uuid4())}}
        bundle["entry"] = [first, *bundle["entry"]]
    isolated(lambda: fhir_client.post(path, _body(bundle), content_type=FHIR_JSON, **headers))


@given(
    resource=mutated(),
    other_type=st.one_of(st.none(), st.sampled_from(sorted(HANDLED_TYPES)), form_text),
    if_none_exist=st.one_of(st.none(), conditions.filter(lambda value: "\n" not in value and "\r" not in value)),
)
def test_fuzz_post_resource(world, fhir_client, resource, other_type, if_none_exist):
    kind = (quote(other_type, safe="") or "Patient") if other_type is not None else _kind(resource)
    headers = _auth(world["sender"])
    if if_none_exist is not None:
        headers["HTTP_IF_NONE_EXIST"] = if_none_exist
    isolated(lambda: fhir_client.post(f"/fhir/{kind}", _body(resource), content_type=FHIR_JSON, **headers))


@given(
    resource=mutated(),
    resource_id=st.one_of(st.none(), form_text, st.from_regex(r"[A-Za-z0-9\-.]{1,64}", fullmatch=True)),
    drop_id=st.booleans(),
    condition=st.one_of(st.none(), st.none(), conditions),
)
def test_fuzz_put_resource(world, fhir_client, resource, resource_id, drop_id, condition):
    """PUT to the resource's own id (None), or another; the body's id kept or left out; or a conditional update
    (PUT [base]/Type?<condition>)."""
    if resource_id is None:
        resource_id = str(resource.get("id") or "x") if isinstance(resource, dict) else "x"
        resource_id = "x" if _surrogates(resource_id) else resource_id  # a URL cannot carry one (UTF-8)
    if drop_id and isinstance(resource, dict):
        resource.pop("id", None)
    path = f"/fhir/{_kind(resource)}/{quote(resource_id, safe='') or 'x'}"
    if condition is not None:
        path = f"/fhir/{_kind(resource)}?{quote(condition, safe='=&|%')}"
    isolated(lambda: fhir_client.put(path, _body(resource), content_type=FHIR_JSON, **_auth(world["sender"])))


@given(body=mutated_xml())
def test_fuzz_post_xml(world, fhir_client, body):
    kind = etree.QName(etree.fromstring(body)).localname
    isolated(lambda: fhir_client.post(f"/fhir/{kind}", body, content_type=FHIR_XML, **_auth(world["sender"])))


@given(
    bundle=bundles(),
    xml_poll=st.booleans(),
    prefer=st.sampled_from(["respond-async", "respond-async, return=minimal", "RESPOND-ASYNC", "return=minimal"]),
    key=st.one_of(st.none(), st.text(max_size=240)),
)
def test_fuzz_post_bundle_asynchronously(world, fhir_client, queue_on, bundle, xml_poll, prefer, key):
    """Through the queue: accepted or refused at once, then the worker's runner (in-process) and the status URL,
    none of them a server error."""
    from bulk import actions as bulk
    from fhirapi.bulkload import run

    headers = {**_auth(world["sender"]), "HTTP_PREFER": prefer}
    if key is not None:
        headers["HTTP_IDEMPOTENCY_KEY"] = key.encode("utf-8", "replace").decode("latin-1", "replace")
    with transaction.atomic():
        accepted = fhir_client.post("/fhir/", _body(bundle), content_type=FHIR_JSON, **headers)
        assert accepted.status_code < 500, accepted.content[:2000]
        if accepted.status_code == 202:
            job = bulk.claim(accepted["Content-Location"].rsplit("/", 1)[1])
            bulk.finish(job, run(job))
            accept = {"HTTP_ACCEPT": FHIR_XML} if xml_poll else {}
            polled = fhir_client.get(accepted["Content-Location"], **_auth(world["sender"]), **accept)
            assert polled.status_code == 200, polled.content[:2000]
        transaction.set_rollback(True)
    event(f"status {accepted.status_code}")


@given(
    body=st.one_of(st.binary(max_size=300), json_values.map(_body), st.text(max_size=200).map(str.encode)),
    content_type=content_types,
    path=st.sampled_from(
        ["/fhir/", "/fhir/Patient", "/fhir/Condition", "/fhir/Bundle", "/fhir/Patient/p1", "/fhir/$process-message"]
    ),
)
def test_fuzz_post_anything(world, fhir_client, body, content_type, path):
    method = fhir_client.put if path.count("/") > 2 else fhir_client.post
    isolated(lambda: method(path, body, content_type=content_type, **_auth(world["sender"])))


# --- FHIR: reading out ----------------------------------------------------------------------------------------------

PARAMS = ["patient", "subject", "_offset", "_count", "_format", "identifier", "_id", "code", "date"]
READ_TYPES = ["Patient", "Condition", "Observation", "CareTeam", "RelatedPerson", "MedicationStatement", "Flag"]


@st.composite
def read_requests(draw):
    patient_id = str(draw(st.sampled_from(["PATIENT", "OTHER"])))
    kind = draw(st.one_of(st.sampled_from(READ_TYPES), form_text))
    identifiers = st.sampled_from(["https://fhir.nhs.uk/Id/nhs-number|", "xml", "json", "|", ""])
    params = draw(
        st.dictionaries(
            st.one_of(st.sampled_from(PARAMS), st.text(max_size=5).filter(lambda s: not _surrogates(s))),
            st.one_of(
                form_text,
                st.just(patient_id),
                st.just(f"Patient/{patient_id}"),
                st.integers().map(str),
                st.tuples(identifiers, st.sampled_from(NHS_NUMBERS)).map("".join),
            ),
            max_size=4,
        )
    )
    shape = draw(st.sampled_from(["search", "read", "everything", "_search", "metadata"]))
    resource_id = draw(st.one_of(form_text, st.just(patient_id), st.integers().map(str), st.just("%C2%B2")))
    # Sometimes the query string as raw bytes, percent-encoded: invalid UTF-8 and all.
    raw_query = draw(st.one_of(st.none(), st.binary(max_size=40).map(lambda b: quote_from_bytes(b, safe="=&"))))
    return shape, kind, resource_id, params, raw_query


def _real(value: str, world) -> str:
    return value.replace("PATIENT", str(world["patient"].pk)).replace("OTHER", str(uuid.uuid4()))


@pytest.mark.hazard("H-13")
@given(request=read_requests(), by_session=st.booleans())
def test_fuzz_read(world, fhir_client, clinician, request, by_session):
    shape, kind, resource_id, params, raw_query = request
    params = {_real(k, world): _real(v, world) for k, v in params.items()}
    resource_id = quote(_real(resource_id, world), safe="%") or "x"
    kind = quote(kind, safe="") or "Patient"
    headers = {} if by_session else _auth(world["reader"])
    if by_session:
        fhir_client.force_login(clinician)
    paths = {
        "search": f"/fhir/{kind}",
        "read": f"/fhir/{kind}/{resource_id}",
        "everything": f"/fhir/Patient/{resource_id}/$everything",
        "metadata": "/fhir/metadata",
    }
    if shape == "_search":
        isolated(lambda: fhir_client.post("/fhir/Patient/_search", params, **headers))
    elif raw_query is not None:
        isolated(lambda: fhir_client.get(f"{paths[shape]}?{raw_query}", **headers))
    else:
        isolated(lambda: fhir_client.get(paths[shape], params, **headers))


# --- forms ----------------------------------------------------------------------------------------------------------

field_values = st.one_of(form_text, st.integers().map(str), st.sampled_from(["self", "other", "on", "nhs", "name"]))


@st.composite
def form_data(draw, fields: dict):
    """A POST: the valid form with up to four fields replaced by anything, or left out; or any fields at all."""
    if draw(st.integers(0, 4)) == 0:
        return draw(st.dictionaries(st.sampled_from(sorted(fields)), field_values))
    data = dict(fields)
    for _ in range(draw(st.integers(min_value=0, max_value=4))):
        name = draw(st.sampled_from(sorted(fields)))
        if draw(st.integers(0, 3)) == 0:
            data.pop(name, None)
        else:
            data[name] = draw(field_values)
    return data


OPTOUT_FIELDS = {
    "on_behalf": "self",
    "on_behalf_name": "A Person",
    "on_behalf_relationship": "parent",
    "given_name": "Nadia",
    "family_name": "Okonkwo-Reyes",
    "dob_day": "15",
    "dob_month": "3",
    "dob_year": "1984",
    "nhs_number": next(nhs_numbers.test_range_numbers()),
    "postcode": "SE1 7EH",
    "contact_email": "nadia@example.com",
    "contact_phone": "020 7946 0000",
    "region": "SEL",
    "reason": "I object",
    "website": "",
}


@pytest.fixture
def no_optout_limit(settings):
    """Set once for the whole test: each assignment to `settings` stacks an override (recursing after thousands)."""
    settings.OPTOUT_REQUESTS_PER_HOUR = 10**9


@given(data=form_data(OPTOUT_FIELDS))
def test_fuzz_public_optout_form(db, no_optout_limit, data):
    client = Client(raise_request_exception=True)
    isolated(lambda: client.post("/opt-out/request/", data))


SEARCH_FIELDS = {
    "by": "nhs",
    "nhs_number": next(nhs_numbers.test_range_numbers()),
    "family_name": "Testperson",
    "given_name": "Ada",
    "dob_day": "1",
    "dob_month": "1",
    "dob_year": "1970",
}


@pytest.mark.hazard("H-13")
@given(data=form_data(SEARCH_FIELDS))
def test_fuzz_patient_search_form(world, clinician, data):
    client = Client(raise_request_exception=True)
    client.force_login(clinician)
    isolated(lambda: client.post("/patients/search/", data))


@pytest.mark.hazard("H-13")
@given(
    data=form_data({"reason_code": "emergency-treatment", "reason_text": "Unconscious in A&E", "confirm": "on"}),
    known=st.booleans(),
)
def test_fuzz_break_glass_form(world, clinician_other_org, data, known):
    client = Client(raise_request_exception=True)
    client.force_login(clinician_other_org)
    patient_id = world["patient"].pk if known else uuid.uuid4()
    isolated(lambda: client.post(f"/patients/{patient_id}/break-glass/", data))


@given(data=form_data({"how_told": "in-person", "reason": "Does not want sharing", "region": "SEL"}))
def test_fuzz_professional_objection_form(world, clinician, data):
    client = Client(raise_request_exception=True)
    client.force_login(clinician)
    isolated(lambda: client.post(f"/patients/{world['patient'].pk}/objection/", data))


def test_the_fuzz_database_is_postgresql():
    """The PostgreSQL run's fuzzing must not be skipped by a typo in DATABASE_URL."""
    assert connection.vendor == "postgresql"
