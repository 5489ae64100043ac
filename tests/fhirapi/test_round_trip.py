"""Round trip: every UK Core example that becomes part of a record comes back on read, element for element.

Each example is sent (as the FHIR JSON its XML reads as) by the sending organisation in a batch with its patient,
Richard Smith (under the urn:uuid the example's subject names, where it names one), then read back through the
API by a clinician in the patient's care, and validated with fhir.resources R4B. `missing()` compares the
example with what the read returns and lists every element of the example that did not come back equal, and
every element the read added where nothing may be added.

What the comparison ignores, and why:
- the resource's `id` and `meta`: carerecord's own (its id, version, time and source). The sender's id must come
  back instead as an identifier naming the sender (and in meta.source); the sender's meta.profile, security and
  tags are checked to be kept.
- the `reference` of each Reference: the sender's address (Patient/UKCore-..., urn:uuid:...) means nothing
  outside the sender. It must be rewritten to a carerecord resource that exists (the patient's, or an entry
  carerecord holds) or be gone, the Reference then keeping what it says: its display, type and an identifier.
  A Reference's `type`, `identifier` and `display` may be added where the example had none (carerecord fills
  them from what the sender said: the sender's id and its own resource's name).
- the identifier carerecord adds to `identifier` (after the example's own, which must all come back in order).
Nothing else may differ: every other element, list item and value of the example must come back as it was.

Not round-tripped, by design: Patient (demographics are always the master view, never one partner's copy),
Organization, Practitioner, PractitionerRole and Medication (names for references, not readable), CareTeam (an
involvement: carerecord's own record of a care relationship, built from it), Consent (an objection to sharing
is a case in IG's queue, not part of the record). An example entered in error is checked to come back to no one.
"""

import json
import re

import pytest
from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.bundle import Bundle
from lxml import etree

from fhirapi.mapping import HANDLED_TYPES
from fhirapi.parse import read as parse
from fhirapi.references import sender_system
from patients.models import Patient
from tests import factories

from .conftest import EXAMPLES, RICHARD_SMITH, RICHARD_SMITH_NHS_NUMBER, example, import_json

pytestmark = [pytest.mark.django_db, pytest.mark.hazard("H-10"), pytest.mark.hazard("H-05")]

NOT_READ_BACK = {"Patient", "Organization", "Practitioner", "PractitionerRole", "Medication", "CareTeam", "Consent"}
# Sent with what they need: an Observation with no subject joins a record only through the report listing it; a
# prescription naming its drug by a Medication reference needs that Medication.
SENT_WITH = {
    "UKCore-Observation-FingerJointInflamed-Example.xml": "UKCore-DiagnosticReport-DiagnosticStudiesReport-Example.xml",
    "UKCore-MedicationRequest-EyeDrops-Example.xml": "UKCore-Medication-TimoptolEyeDrops-Example.xml",
    "UKCore-MedicationDispense-EyeDrops-Example.xml": "UKCore-Medication-TimoptolEyeDrops-Example.xml",
    "UKCore-MedicationAdministration-TimoptolEyeDrops-Example.xml": "UKCore-Medication-TimoptolEyeDrops-Example.xml",
    "UKCore-MedicationAdministration-Sn-ZeroDosage-Example.xml": "UKCore-Medication-TimoptolEyeDrops-Example.xml",
}
# Withdrawn by its source: kept, given back to no one (the read returns nothing for it).
WITHDRAWN = {"UKCore-AllergyIntolerance-EnteredInError-Example.xml"}
OUR_REFERENCE = re.compile(r"(?:Patient/[0-9a-f-]{36}|[A-Z][A-Za-z]+/(?:[a-z]+-)?[0-9]+)")
REFERENCE_EXTRAS = {"reference", "type", "identifier", "display"}


def resource_type(name: str) -> str:
    return etree.QName(etree.parse(str(EXAMPLES / name)).getroot()).localname


ROUND_TRIPPED = sorted(p.name for p in EXAMPLES.glob("*.xml") if resource_type(p.name) in HANDLED_TYPES - NOT_READ_BACK)


def as_json(name: str) -> dict:
    [entry] = parse(example(name), "application/fhir+xml").entries
    return json.loads(entry.resource.model_dump_json())


def subject_urn(resource: dict) -> str | None:
    for element in ("subject", "patient"):
        reference = (resource.get(element) or {}).get("reference", "")
        if reference.startswith("urn:uuid:"):
            return reference
    return None


def is_reference(value) -> bool:
    return isinstance(value, dict) and isinstance(value.get("reference"), str)


def missing(sent, got, path: str = "") -> list[str]:
    """Where `got` does not give back `sent` (see the module docstring for what is ignored)."""
    if isinstance(sent, dict):
        if not isinstance(got, dict):
            return [f"{path} (not an element)"]
        top = path == ""
        problems = []
        for key, value in sent.items():
            if (top and key in ("id", "meta")) or (key == "reference" and is_reference(sent)):
                continue
            if key not in got:
                problems.append(f"{path}.{key} (missing)")
            elif top and key == "identifier" and isinstance(value, list):
                problems += missing(value, got[key][: len(value)], f"{path}.{key}")
            else:
                problems += missing(value, got[key], f"{path}.{key}")
        allowed = set(sent) | ({"id", "meta", "identifier"} if top else set())
        if is_reference(sent) or (set(sent) <= REFERENCE_EXTRAS and "reference" in got):
            allowed |= REFERENCE_EXTRAS
        problems += [f"{path}.{key} (added)" for key in set(got) - allowed]
        return problems
    if isinstance(sent, list):
        if not isinstance(got, list) or len(got) != len(sent):
            return [f"{path} ({len(sent)} items sent, {len(got) if isinstance(got, list) else 'none'} back)"]
        return [
            problem for n, (a, b) in enumerate(zip(sent, got, strict=True)) for problem in missing(a, b, f"{path}[{n}]")
        ]
    return [] if sent == got else [f"{path} ({sent!r} sent, {got!r} back)"]


def references_in(value):
    if isinstance(value, dict):
        if is_reference(value):
            yield value
        for item in value.values():
            yield from references_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from references_in(item)


@pytest.fixture
def send(sender, care_team):
    """Send examples (with Richard Smith) and put the reader's care team in his care: returns his Patient."""

    def send(*names):
        resources = [as_json(name) for name in names]
        urn = next(filter(None, (subject_urn(resource) for resource in resources)), None)
        entries = [
            {"fullUrl": urn, "resource": as_json(RICHARD_SMITH)} if urn else {"resource": as_json(RICHARD_SMITH)}
        ]
        entries += [{"resource": resource} for resource in resources]
        for entry in entries:
            entry["request"] = {"method": "POST", "url": entry["resource"]["resourceType"]}
        report = import_json({"resourceType": "Bundle", "type": "batch", "entry": entries}, sender)
        assert all(o.status in ("created", "updated", "unchanged") for o in report.outcomes), [
            (o.resource_type, o.issues) for o in report.outcomes
        ]
        patient = Patient.objects.get(nhs_number=RICHARD_SMITH_NHS_NUMBER)
        factories.InvolvementFactory(patient=patient, care_team=care_team)
        return patient

    return send


def identifiers(resource: dict) -> list:
    held = resource.get("identifier") or []
    return held if isinstance(held, list) else [held]  # Composition has one


def read_back(api, token, patient, sent: dict, sender) -> dict | None:
    """The resource carerecord gives back for `sent`, found by the sender's id it keeps (as an identifier, or
    where the type holds one identifier only, in meta.source)."""
    kind = sent["resourceType"]
    response = api.get(f"/fhir/{kind}?patient={patient.pk}&_count=200", token=token)
    assert response.status_code == 200, response.content
    bundle = Bundle.model_validate(json.loads(response.content))  # the whole searchset validates with R4B
    found = [entry for entry in json.loads(response.content).get("entry", [])]
    ours = {"system": sender_system(sender.ods_code, kind), "value": sent["id"]}
    source = f"{sender_system(sender.ods_code)}#{kind}/{sent['id']}"
    matches = [
        entry["resource"]
        for entry in found
        if ours in identifiers(entry["resource"]) or entry["resource"].get("meta", {}).get("source") == source
    ]
    assert len(matches) <= 1, (kind, [entry["resource"].get("identifier") for entry in found], bundle.total)
    if not matches:
        return None
    resource = matches[0]
    single = api.get(f"/fhir/{kind}/{resource['id']}", token=token)  # a read by our id gives the same
    assert single.status_code == 200 and json.loads(single.content) == resource
    return resource


@pytest.mark.parametrize("name", ROUND_TRIPPED)
def test_every_element_of_the_example_comes_back(name, api, reader_token, sender, send):
    names = [name, SENT_WITH[name]] if name in SENT_WITH else [name]
    patient = send(*names)
    sent = as_json(name)
    got = read_back(api, reader_token, patient, sent, sender)
    if name in WITHDRAWN:
        assert got is None
        return
    assert got is not None, f"{name} is not given back"

    get_fhir_model_class(sent["resourceType"]).model_validate(got)  # valid R4B
    assert missing(sent, got) == []
    assert re.fullmatch(r"(?:[a-z]+-)?[0-9]+", got["id"])  # carerecord's id
    meta, sent_meta = got["meta"], sent.get("meta") or {}
    assert meta["source"] == f"{sender_system(sender.ods_code)}#{sent['resourceType']}/{sent['id']}"
    assert meta["tag"][0]["code"] == sender.ods_code
    assert meta.get("profile") == sent_meta.get("profile")
    assert all(label in meta.get("security", []) for label in sent_meta.get("security", []))
    assert all(tag in meta["tag"] for tag in sent_meta.get("tag", []))
    for reference in references_in(got):
        text = reference["reference"]
        assert text.startswith("#") or OUR_REFERENCE.fullmatch(text), text
        if text.startswith("Patient/"):
            assert text == f"Patient/{patient.pk}"  # the patient's own reference, never the sender's


def test_the_examples_round_tripped_cover_every_readable_type_sent():
    assert {resource_type(name) for name in ROUND_TRIPPED} == {
        "AllergyIntolerance",
        "Appointment",
        "CarePlan",
        "Composition",
        "Condition",
        "DiagnosticReport",
        "DocumentReference",
        "Encounter",
        "EpisodeOfCare",
        "Flag",
        "Immunization",
        "MedicationAdministration",
        "MedicationDispense",
        "MedicationRequest",
        "MedicationStatement",
        "Observation",
        "Procedure",
        "RelatedPerson",
        "ServiceRequest",
    }


def test_the_comparison_notices_what_is_lost_or_changed():
    """missing() is the test's instrument: it must fail on a dropped element, a changed value, an item lost from a
    list and an element added, and not on what carerecord rewrites."""
    sent = {
        "resourceType": "Condition",
        "id": "c1",
        "identifier": [{"system": "s", "value": "1"}],
        "code": {"coding": [{"system": "a", "code": "1"}, {"system": "b", "code": "2"}]},
        "subject": {"reference": "Patient/x", "display": "Ada"},
    }
    rewritten = {
        **sent,
        "id": "12",
        "meta": {"versionId": "1"},
        "identifier": [*sent["identifier"], {"system": "ours", "value": "c1"}],
        "subject": {"reference": "Patient/00000000-0000-4000-8000-000000000000", "display": "Ada"},
    }
    assert missing(sent, rewritten) == []
    assert missing(sent, {**rewritten, "code": {"coding": sent["code"]["coding"][:1]}}) == [
        ".code.coding (2 items sent, 1 back)"
    ]
    assert missing(sent, {**rewritten, "subject": {"reference": "Patient/y"}}) == [".subject.display (missing)"]
    assert missing(sent, {**rewritten, "onsetDateTime": "2026-01-01"}) == [".onsetDateTime (added)"]
    changed = {**rewritten, "code": {"coding": [{"system": "a", "code": "1"}, {"system": "b", "code": "3"}]}}
    assert missing(sent, changed) == [".code.coding[1].code ('2' sent, '3' back)"]
