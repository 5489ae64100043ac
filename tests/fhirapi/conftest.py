"""FHIR test helpers: the UK Core examples, a sending organisation with its token, and builders for
small JSON resources. The sender is `other_organisation` (an acute trust sharing every category), so
`clinician` at `organisation` sees what it sends, as a partner would."""

import json
from pathlib import Path

import pytest

from directory.actions import create_api_token
from fhirapi.ingest import ingest
from fhirapi.parse import read

# Vendored verbatim (tests/fixtures/README.md): the tests never read outside the repository.
EXAMPLES = Path(__file__).resolve().parent.parent / "fixtures" / "fhir" / "ukcore"
RICHARD_SMITH = "UKCore-Patient-RichardSmith-Example.xml"
RICHARD_SMITH_NHS_NUMBER = "9912003888"
FHIR_JSON = "application/fhir+json"
FHIR_XML = "application/fhir+xml"


def example(name: str) -> bytes:
    return (EXAMPLES / name).read_bytes()


def import_bytes(body: bytes, organisation, content_type=None):
    return ingest(read(body, content_type), organisation=organisation)


def import_json(resource: dict, organisation):
    return import_bytes(json.dumps(resource).encode(), organisation)


@pytest.fixture
def sender(other_organisation):
    return other_organisation


@pytest.fixture
def sender_token(sender):
    _, secret = create_api_token(by=None, name="EPR feed", organisation=sender)
    return secret


@pytest.fixture
def reader_token(clinician):
    _, secret = create_api_token(by=None, name="Clinical viewer", user=clinician)
    return secret


@pytest.fixture
def api(client):
    """Django's test client speaking FHIR: api.post(path, resource_or_bytes, token=...)."""

    class Api:
        def post(self, path, body, *, token=None, content_type=FHIR_JSON, method="post", **extra):
            if isinstance(body, dict):
                body = json.dumps(body).encode()
            headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
            return getattr(client, method)(path, body, content_type=content_type, **headers, **extra)

        def put(self, path, body, **kwargs):
            return self.post(path, body, method="put", **kwargs)

        def get(self, path, *, token=None, **extra):
            headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
            return client.get(path, **headers, **extra)

    return Api()


def patient_resource(resource_id="p1", nhs_number="9990000018", family="Testperson", **extra):
    return {
        "resourceType": "Patient",
        "id": resource_id,
        "identifier": [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": nhs_number}],
        "name": [{"use": "official", "family": family, "given": ["Ada"]}],
        "gender": "female",
        "birthDate": "1970-01-01",
        **extra,
    }


def condition_resource(resource_id="c1", patient="Patient/p1", name="Type 2 diabetes mellitus", **extra):
    return {
        "resourceType": "Condition",
        "id": resource_id,
        "clinicalStatus": {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]
        },
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "44054006", "display": name}]},
        "subject": {"reference": patient},
        "onsetDateTime": "2020-01-01",
        **extra,
    }


def bundle(kind, *resources, full_urls=None):
    full_urls = full_urls or [None] * len(resources)
    entries = []
    for resource, full_url in zip(resources, full_urls, strict=True):
        entry = {"resource": resource}
        if full_url:
            entry["fullUrl"] = full_url
        if kind in ("transaction", "batch"):
            entry["request"] = {"method": "POST", "url": resource["resourceType"]}
        entries.append(entry)
    return {"resourceType": "Bundle", "type": kind, "entry": entries}


def example_resource(name: str) -> dict:
    """A UK Core example (XML) as FHIR JSON, to be sent in bundles of one's choosing."""
    from fhir.resources.R4B import get_fhir_model_class

    resource_type = name.removeprefix("UKCore-").split("-")[0]
    model = get_fhir_model_class(resource_type)
    return json.loads(model.model_validate_xml(example(name)).model_dump_json(exclude_none=True))
